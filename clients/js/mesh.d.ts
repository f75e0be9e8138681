// Type declarations for mesh.js.
import type { Emitter, IceServer, SignalingClient } from "./signaling.js";

export interface MeshOptions {
  /** Its `iceServers`, when given, win over the server's. */
  rtcConfig?: RTCConfiguration;
  /** DataChannel label, or null for none (default "data"). */
  dataChannel?: string | null;
  localStream?: MediaStream | null;
  RTCPeerConnection?: { new (config?: RTCConfiguration): RTCPeerConnection };
}

export interface MeshPeer {
  id: string;
  pc: RTCPeerConnection;
  polite: boolean;
  channel: RTCDataChannel | null;
  offers: number;
  candidateTypes: string[];
}

export interface MeshEvents {
  peer: { peerId: string; pc: RTCPeerConnection; polite: boolean };
  peer_closed: { peerId: string };
  state: { peerId: string; state: RTCPeerConnectionState };
  channel_open: { peerId: string };
  channel_close: { peerId: string };
  message: { peerId: string; data: unknown };
  track: { peerId: string; track: MediaStreamTrack; streams: readonly MediaStream[] };
  error: { peerId: string; error: unknown };
}

export declare class Mesh extends Emitter<MeshEvents> {
  constructor(client: SignalingClient, options?: MeshOptions);
  readonly client: SignalingClient;
  readonly peers: ReadonlyMap<string, MeshPeer>;
  /** Offers this side has made, over all peers and all time. */
  readonly negotiations: number;
  send(data: string | ArrayBuffer | Blob | ArrayBufferView): number;
  sendTo(peerId: string, data: string | ArrayBuffer | Blob | ArrayBufferView): boolean;
  setLocalStream(stream: MediaStream): void;
  setIceServers(iceServers: IceServer[]): void;
  close(): void;
}
