export {
    StdOutAdapter,
} from '../../src/lib/adapters/stdout/mod';
