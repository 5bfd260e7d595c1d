/** A table of rkt-helper's (mount, launch, init) as it reads it: one operation a line, fields split on spaces, \ooo unescaped. */
export function parseTable(text: string): string[][] {
  return text.split('\n').filter(Boolean).map((l) => l.split(' ').map((f) => f.replace(/\\([0-3][0-7]{2})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)))));
}
