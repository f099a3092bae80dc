/**
 * What `fn` throws, for tests that then assert on the error (its class, rule, message). A
 * call that does not throw fails the test here, with that said, rather than later on an
 * assertion about `undefined`.
 */
export function thrown<E = Error>(fn: () => unknown): E {
  try {
    fn();
  } catch (e) {
    return e as E;
  }
  throw new Error('expected the call to throw, and it returned');
}
