/**
 * Per-project test timeouts (jest takes `testTimeout` only from the global config, not
 * from a project's). They cover the tests' own bounded waits on a loaded 2-core CI
 * machine; they are not timing assertions.
 */
import { expect, jest } from '@jest/globals';

const integration = (expect.getState().testPath ?? '').includes('/test/integration/');
jest.setTimeout(integration ? 120_000 : 30_000);

/** A hook that builds the whole package (tsc, bundle, static helpers) and installs it with npm. */
export const BUILD_AND_INSTALL_MS = 300_000;
