import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules', 'dist', 'data', 'artifacts', 'test-results', '.gpu-check'] },
  js.configs.recommended,
  ...tseslint.configs.strict,
  {
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
    },
  },
  // The dashboard's browser modules: tsc checks their names against the DOM library (npm run typecheck).
  { files: ['src/dashboard/*.js'], rules: { 'no-undef': 'off' } },
);
