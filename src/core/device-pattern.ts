/**
 * Which devices a rollout's `--devices` pattern names: `all`, an id, or a pattern where `*` stands for
 * any run of characters and `?` for one (`relay-*`). One definition for the CLI (`mqttkit ota rollout
 * --devices`) and the dashboard's Updates page, which imports the compiled file from
 * `/shared/device-pattern.js` (docs/api.md). Dependency-free on purpose: the browser loads it as is.
 */

/** The ids among `ids` that `pattern` names, in the order given ('all': every one). */
export function matchDevices(pattern: string, ids: readonly string[]): string[] {
  if (pattern === 'all') return [...ids];
  const regex = new RegExp(
    `^${pattern
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
  );
  return ids.filter((id) => regex.test(id));
}
