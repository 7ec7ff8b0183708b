// The MicroPython WebAssembly package ships no typings; this is the part the tests use.
declare module '@micropython/micropython-webassembly-pyscript/micropython.mjs' {
  export interface MicroPythonInstance {
    runPython(code: string): unknown;
    globals: { set(name: string, value: unknown): void; get(name: string): unknown };
    FS: { mkdirTree(path: string): void; writeFile(path: string, data: string): void };
  }
  export function loadMicroPython(options?: { stdout?: (line: string) => void; stderr?: (line: string) => void }): Promise<MicroPythonInstance>;
}
