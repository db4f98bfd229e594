/**
 * On SIGUSR1 Node opens its inspector on 127.0.0.1:9229, and any local process may then run code in this one (as
 * root, unless --user). A listener of our own keeps the inspector closed. Every entry point imports this module
 * first, so the listener is in place as soon as the bundle starts to run; the launchers cover the moments before.
 */
process.on('SIGUSR1', () => undefined);
