// Type declarations for signaling.js (the `signaling-client` package; mesh.d.ts for mesh.js).

export declare const V2_SUBPROTOCOL: "signaling.v2";

export type ConnectionState = "idle" | "connecting" | "open" | "reconnecting" | "closed";

export interface IceServer {
  urls: string | string[];
  username?: string;
  credential?: string;
}

export interface ClientOptions {
  /** 2 (default): membership events, directed signals, resume. 1: the seed protocol. */
  protocol?: 1 | 2;
  /** Reconnect and resume after an unexpected close (v2; default true). */
  reconnect?: boolean;
  /** After `resume_failed`, join the same room afresh (default false). */
  rejoin?: boolean;
  initialDelayMs?: number;
  maxDelayMs?: number;
  factor?: number;
  /** 0: exact delays; 1: anywhere between 0 and the delay (default 0.5). */
  jitter?: number;
  maxAttempts?: number;
  /** Signals kept while reconnecting (default 256). */
  maxBuffered?: number;
  /** A JWT when the server requires one, or a function returning one (or a promise of
   * one), asked again for every reconnect. Sent as a `bearer.<jwt>` subprotocol (v2) or
   * `?token=` (v1). */
  token?: string | null | (() => string | Promise<string>);
  /** For environments without a global WebSocket (and for tests). */
  WebSocket?: { new (url: string, protocols?: string | string[]): WebSocket };
  setTimeout?: (fn: () => void, ms: number) => unknown;
  clearTimeout?: (handle: unknown) => void;
  random?: () => number;
}

export declare const DEFAULTS: Readonly<
  Required<Omit<ClientOptions, "WebSocket" | "setTimeout" | "clearTimeout" | "random" | "token">>
> & { readonly token: null };

export interface RoomInfo {
  roomId: string;
  myId: string;
  /** The other members (v2; always empty for v1). */
  peers: string[];
  /** ICE servers from the server (v2, when it is configured with TURN/STUN). */
  iceServers: IceServer[];
  /** True for `create`, false for `join` and `resumed`. */
  created: boolean;
}

export interface ClientEvents {
  state: { state: ConnectionState; previous: ConnectionState };
  room: RoomInfo;
  peer_joined: { peerId: string; seq: number };
  peer_left: { peerId: string; reason: "left" | "disconnected" | "expired"; seq: number };
  signal: { from: string; payload: unknown; seq?: number };
  room_expired: { roomId: string | null };
  error: { code: string; message: string };
  resumed: RoomInfo;
  resume_failed: { roomId: string | null; code: string; message: string; dropped: number };
  rejoined: RoomInfo;
  ice_servers: { iceServers: IceServer[] };
}

export declare class SignalingError extends Error {
  readonly code: string;
  constructor(code: string, message: string);
}

export declare class Emitter<Events> {
  on<K extends keyof Events>(type: K, listener: (detail: Events[K]) => void): () => void;
  off<K extends keyof Events>(type: K, listener: (detail: Events[K]) => void): void;
  once<K extends keyof Events>(type: K, listener: (detail: Events[K]) => void): () => void;
  next<K extends keyof Events>(type: K): Promise<Events[K]>;
  emit<K extends keyof Events>(type: K, detail: Events[K]): void;
}

export declare function backoffDelay(
  attempt: number,
  options?: ClientOptions,
  random?: () => number,
): number;

export declare class SeqTracker {
  last: number;
  constructor(last?: number);
  accept(seq: unknown): boolean;
  reset(seq?: number): void;
}

export declare class SignalingClient extends Emitter<ClientEvents> {
  constructor(url: string, options?: ClientOptions);
  readonly url: string;
  readonly protocol: 1 | 2;
  readonly state: ConnectionState;
  readonly roomId: string | null;
  readonly myId: string | null;
  readonly peers: ReadonlySet<string>;
  readonly iceServers: IceServer[];
  readonly lastSeq: number;
  connect(): Promise<void>;
  create(): Promise<RoomInfo>;
  join(roomId: string | number): Promise<RoomInfo>;
  leave(): Promise<void>;
  signal(payload: unknown, options?: { to?: string }): boolean;
  close(): void;
}
