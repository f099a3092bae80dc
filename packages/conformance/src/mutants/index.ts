export { MUTANT_BUGS, MUTANT_RULE, createTestPool, type MutantBug } from './pool.js';
