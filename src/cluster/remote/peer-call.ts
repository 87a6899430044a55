// What a caller may conclude from a call to a peer that did not bring an answer, the same for a
// forwarded write (forward-stream.ts) and a remote service call (remote-call-client.ts):
// "unsent" means the peer never ran it (refused before running it, or never reached), so retrying
// cannot repeat it; "ambiguous" means it may have run, so only a read (or a client with an
// idempotency key) may try again.

export type PeerCallFailure =
  | { readonly kind: 'unsent'; readonly reason: string }
  | { readonly kind: 'ambiguous'; readonly reason: string };
