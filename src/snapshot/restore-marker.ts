// The file a snapshot restore keeps in a data directory while it writes it (restore.ts); a node
// refuses to start on a directory that holds it (node.ts), so a restore cut short is never served.
export const restoreMarkerFileName = 'restore-in-progress';
