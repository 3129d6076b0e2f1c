/**
 * Loaded with `node --cpu-prof --import dist/bench/exit-on-signal.preload.js` by the benchmarks when they
 * profile the api: SIGUSR2 ends the process with process.exit(0), which writes the CPU profile (a
 * SIGTERM goes through Nest's shutdown hooks, which re-raise the signal, and no profile is written).
 */
process.on('SIGUSR2', () => process.exit(0));
export {};
