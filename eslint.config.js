// Lint and format rules. The style rules describe the code as it was already written (no semicolons,
// single quotes, 2-space indent, trailing commas on multiline literals): they hold it there, not reformat it.
import js from '@eslint/js'
import tseslint from 'typescript-eslint'
import stylistic from '@stylistic/eslint-plugin'
import globals from 'globals'

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'coverage/', '.tap/', 'drizzle/meta/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.{ts,js,mjs}'],
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: 'module',
      globals: globals.node,
    },
    plugins: { '@stylistic': stylistic },
    rules: {
      '@stylistic/semi': ['error', 'never'],
      '@stylistic/quotes': ['error', 'single', { avoidEscape: true }],
      // A return type continued on its own line is indented like the parameters (house habit).
      '@stylistic/indent': ['error', 2, {
        SwitchCase: 1, flatTernaryExpressions: true, offsetTernaryExpressions: true, ignoredNodes: ['TSTypeAnnotation'],
      }],
      '@stylistic/comma-dangle': ['error', 'always-multiline'],
      '@stylistic/space-before-function-paren': ['error', {
        anonymous: 'always', named: 'never', asyncArrow: 'always',
      }],
      '@stylistic/max-len': ['error', { code: 120, ignoreUrls: true, ignoreRegExpLiterals: true }],
      '@stylistic/eol-last': 'error',
      '@stylistic/no-trailing-spaces': 'error',
      '@stylistic/no-multiple-empty-lines': ['error', { max: 1, maxEOF: 0 }],
      '@stylistic/comma-spacing': 'error',
      '@stylistic/key-spacing': 'error',
      '@stylistic/keyword-spacing': 'error',
      '@stylistic/space-infix-ops': 'error',
      '@stylistic/space-before-blocks': 'error',
      '@stylistic/arrow-spacing': 'error',
      '@stylistic/brace-style': ['error', '1tbs', { allowSingleLine: true }],
      '@stylistic/type-annotation-spacing': 'error',
      '@typescript-eslint/no-unused-vars': ['error', {
        argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none',
      }],
    },
  },
  {
    // Served to the browser (the /admin/live page).
    files: ['src/live/assets/**/*.js', 'src/queue/assets/**/*.js'],
    languageOptions: { globals: globals.browser },
  },
  {
    // Tests and benchmarks: a test's title, an SQL statement or a message in one literal stays greppable.
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: {
      // Response bodies of the API under test are read as any.
      '@typescript-eslint/no-explicit-any': 'off',
      '@stylistic/max-len': ['error', {
        code: 120, ignoreUrls: true, ignoreRegExpLiterals: true, ignoreStrings: true, ignoreTemplateLiterals: true,
        ignorePattern: '^\\s*(await )?t\\.test\\(',
      }],
    },
  },
)
