export interface WrongDevice { stop(): Promise<void> }
export async function startWrongDevice(): Promise<WrongDevice> { return { stop: async () => {} }; }
