/** A seeded pseudo-random generator (mulberry32) in [0, 1), so randomized tests repeat exactly. */
export { prng as rng } from '../../src/lib/prng.js';
