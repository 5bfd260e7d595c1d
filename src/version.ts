export const RKT_VERSION = '0.1.0';
export const APPC_VERSION = '0.8.11';
