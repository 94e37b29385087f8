export const demoUsage = 'Usage: afxdp demo';
export async function demo(_argv: string[]): Promise<number> { return 2; }
