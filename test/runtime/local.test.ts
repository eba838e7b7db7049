import { LocalRuntime } from '../../src/runtime/local/runtime.ts';
import { runtimeConformance } from './conformance.ts';

runtimeConformance('local', (ws) => new LocalRuntime(ws));
