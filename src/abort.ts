/**
 * Calls that can wait take Node's own shape: the required arguments, then
 * an options object, last, that holds the signal.
 */
export interface Abortable {
  /** Aborting it makes the call reject at once (with an error whose `cause` is the signal's reason). */
  signal?: AbortSignal | undefined;
}

/**
 * `work`, or a rejection with `stopped(signal.reason)` as soon as `signal`
 * is aborted, whichever comes first. What `work` goes on doing is its own
 * affair (a request already sent is answered later and dropped): this only
 * stops the wait. A rejection of `work` after the abort is handled here.
 */
export function abortable<T>(
  work: Promise<T>,
  signal: AbortSignal | undefined,
  stopped: (reason: unknown) => Error,
): Promise<T> {
  if (!signal) return work;
  if (signal.aborted) {
    work.catch(() => {});
    return Promise.reject(stopped(signal.reason));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => {
      work.catch(() => {});
      reject(stopped(signal.reason));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    work.finally(() => signal.removeEventListener('abort', onAbort)).then(resolve, reject);
  });
}
