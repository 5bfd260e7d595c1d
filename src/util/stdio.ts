/**
 * process.stdout and process.stderr are built on first use, and building one costs a few ms
 * (a pipe's loads net): `rkt run`, which prints nothing on stdout and at most a warning on
 * stderr, need not pay for them. These hooks run when a stream is first used.
 */
type StdioName = 'stdout' | 'stderr';

/** The streams built so far (as far as whenBuilt saw). */
const built = new Set<StdioName>();

/** Whether process.stdout or process.stderr has been built (one may have made its fd non-blocking). */
export function stdioBuilt(): boolean {
  return built.size > 0;
}

/** Calls `onBuilt` with process[name] once something first uses it (at once if it cannot tell). */
export function whenBuilt(name: StdioName, onBuilt: (stream: NodeJS.WriteStream) => void): void {
  const lazy = Object.getOwnPropertyDescriptor(process, name);
  if (!lazy?.get || !lazy.configurable) {
    built.add(name);
    onBuilt(process[name]);
    return;
  }
  Object.defineProperty(process, name, {
    configurable: true,
    enumerable: lazy.enumerable,
    get() {
      built.add(name);
      Object.defineProperty(process, name, lazy);
      const stream = process[name];
      onBuilt(stream);
      return stream;
    },
  });
}
