/**
 * Options objects are checked against the keys a function knows, so a misspelt key (`lrr`,
 * PyTorch's `betas`) is an error that lists the known ones instead of being silently ignored.
 */
export function checkOptionKeys(where: string, options: object | undefined, known: readonly string[]): void {
  if (options === undefined || options === null) return;
  const unknown = Object.keys(options).filter((k) => !known.includes(k) && (options as Record<string, unknown>)[k] !== undefined);
  if (unknown.length) {
    throw new Error(`${where}: unknown option${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `'${k}'`).join(', ')} (known: ${known.join(', ')})`);
  }
}
