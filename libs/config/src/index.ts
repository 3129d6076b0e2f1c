export * from './app-config.js';
export * from './pays-loader.js';
export * from './config.module.js';
export * from './sandbox-mode.js';
