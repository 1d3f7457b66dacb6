import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'native/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['src/**/*.ts', 'test/**/*.ts'],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': 'error',
      'no-console': 'error',
    },
  },
  {
    // Style rule 1: only src/kernel/ runs commands (and src/tools/kernel/, the lab's and bench's own).
    files: ['src/**/*.ts'],
    ignores: ['src/kernel/**', 'src/tools/kernel/**'],
    rules: {
      'no-restricted-imports': ['error', { paths: ['node:child_process', 'child_process'] }],
    },
  },
);
