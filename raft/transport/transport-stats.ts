// Counters of one transport, read by metrics and tests. "Sent" means handed to the gRPC stream;
// frames that were in flight when a stream broke are lost without being counted as dropped.

export interface TransportStats {
  framesSent: number;
  messagesSent: number;
  framesReceived: number;
  messagesReceived: number;
  /** Outbound frames not sent: peer unknown or down, queue full, or larger than frameBytesMax. */
  framesDropped: number;
  messagesDropped: number;
  /** Inbound frames refused: undecodable, or addressed to another node. */
  framesRejected: number;
  /** Inbound calls refused for a missing or wrong cluster secret. */
  callsUnauthenticated: number;
  /** Streams re-established after a break. */
  reconnects: number;
  snapshotsSent: number;
  snapshotsReceived: number;
  /** Outbound snapshot transfers that did not end in an answer from the receiver. */
  snapshotsFailed: number;
}

export const emptyTransportStats = (): TransportStats => ({
  framesSent: 0,
  messagesSent: 0,
  framesReceived: 0,
  messagesReceived: 0,
  framesDropped: 0,
  messagesDropped: 0,
  framesRejected: 0,
  callsUnauthenticated: 0,
  reconnects: 0,
  snapshotsSent: 0,
  snapshotsReceived: 0,
  snapshotsFailed: 0,
});
