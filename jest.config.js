/** Jest in ESM (vm-modules) mode, as ../shared/design/STACK.md prescribes for Nest 12 on Node 20. */
const libs = ['common', 'config', 'database', 'channels', 'payments', 'sandbox'];
const moduleNameMapper = { '^(\\.{1,2}/.*)\\.js$': '$1' };
for (const lib of libs) moduleNameMapper[`^#${lib}$`] = `<rootDir>/libs/${lib}/src/index.ts`;
const base = {
  extensionsToTreatAsEsm: ['.ts', '.tsx'],
  moduleNameMapper,
  transform: { '^.+\\.tsx?$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.json' }] },
  testEnvironment: 'node',
};
export default {
  testTimeout: 60000,
  projects: [
    { ...base, displayName: 'unit', testMatch: ['<rootDir>/libs/**/*.spec.ts', '<rootDir>/apps/**/*.spec.ts'] },
    { ...base, displayName: 'e2e', testMatch: ['<rootDir>/test/e2e/**/*.e2e-spec.ts'] },
  ],
};
