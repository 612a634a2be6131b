export function connectionsTo(pid: number | 'self', port: number): { mine: number; all: number };
