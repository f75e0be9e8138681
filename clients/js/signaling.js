// SignalingClient: the browser client of the `signaling` server (plain ES module, no build).
//
// Why a client at all: protocol v2's resume is easy to get wrong by hand. This one keeps the
// resume token and the last `seq` it delivered, reconnects with exponential backoff and
// jitter after an unexpected close, resumes, and drops anything it already delivered, so
// the application sees every message exactly once and in order. Signals sent while the
// socket is down are kept and sent after the resume.
//
//   const client = new SignalingClient("wss://signal.example.com/");
//   client.on("signal", ({ from, payload }) => ...);
//   const { roomId, peers } = await client.create();   // or client.join("4821")
//   client.signal({ hello: 1 }, { to: peers[0] });
//
// The server serves this file at /client/signaling.js; the npm package is `signaling-client`.

export const V2_SUBPROTOCOL = "signaling.v2";

export const DEFAULTS = Object.freeze({
  protocol: 2, // 1 = the seed protocol (no membership events, no resume)
  reconnect: true, // v2: reconnect and resume after an unexpected close
  rejoin: false, // after `resume_failed`, join the same room afresh
  initialDelayMs: 250,
  maxDelayMs: 10000,
  factor: 2,
  jitter: 0.5, // 0: exact delays; 1: anywhere between 0 and the delay
  maxAttempts: Infinity, // reconnect attempts before giving up (then `resume_failed`)
  maxBuffered: 256, // signals kept while reconnecting
  token: null, // JWT (or a function returning one, or a promise of one) when auth is on
});

// Close codes after which resuming makes no sense.
const ROOM_EXPIRED = 4000;
const RESUMED_ELSEWHERE = 4001;
// Errors that answer a pending create/join (anything else is only an `error` event).
const ENTRY_ERRORS = new Set([
  "room_not_found",
  "rooms_exhausted",
  "room_full",
  "already_in_room",
  "overloaded",
  "unavailable",
  "rate_limited",
  "unauthorized",
  "internal",
  "bad_message",
]);
// Errors that make a resume worth asking again rather than giving up on the session.
const TRANSIENT_ERRORS = new Set(["overloaded", "unavailable", "rate_limited"]);
// Messages whose `seq` is the room's position, not a delivered event.
const POSITION_MESSAGES = new Set(["room_created", "room_joined", "resumed"]);

export class SignalingError extends Error {
  constructor(code, message) {
    super(message);
    this.name = "SignalingError";
    this.code = code;
  }
}

/** Delay before reconnect attempt `attempt` (0-based): capped exponential, minus jitter. */
export function backoffDelay(attempt, options = DEFAULTS, random = Math.random) {
  const { initialDelayMs, maxDelayMs, factor, jitter } = { ...DEFAULTS, ...options };
  const base = Math.min(maxDelayMs, initialDelayMs * factor ** attempt);
  return Math.round(base * (1 - jitter * random()));
}

/** The last delivered `seq`: accepts each higher number once, refuses repeats. */
export class SeqTracker {
  constructor(last = 0) {
    this.last = last;
  }

  /** True when a message with this seq is new (and remembers it); false for a repeat. */
  accept(seq) {
    if (typeof seq !== "number") return true;
    if (seq <= this.last) return false;
    this.last = seq;
    return true;
  }

  reset(seq = 0) {
    this.last = seq;
  }
}

/** A tiny listener registry shared by the client and the mesh helper. */
export class Emitter {
  constructor() {
    this._listeners = new Map();
  }

  /** Listen to `type`; returns a function that stops listening. */
  on(type, listener) {
    let set = this._listeners.get(type);
    if (!set) this._listeners.set(type, (set = new Set()));
    set.add(listener);
    return () => this.off(type, listener);
  }

  off(type, listener) {
    this._listeners.get(type)?.delete(listener);
  }

  once(type, listener) {
    const off = this.on(type, (detail) => {
      off();
      listener(detail);
    });
    return off;
  }

  /** A promise of the next `type` event (handy in tests and demos). */
  next(type) {
    return new Promise((resolve) => this.once(type, resolve));
  }

  emit(type, detail) {
    const set = this._listeners.get(type);
    if (!set) return;
    for (const listener of [...set]) {
      try {
        listener(detail);
      } catch (err) {
        // A throwing listener must not corrupt the client's bookkeeping: report it and go on.
        if (typeof globalThis.reportError === "function") globalThis.reportError(err);
        else
          queueMicrotask(() => {
            throw err;
          });
      }
    }
  }
}

export class SignalingClient extends Emitter {
  /**
   * @param {string} url ws:// or wss:// address of the server (any path).
   * @param {object} [options] see DEFAULTS; `token` is sent as a `bearer.<jwt>`
   *   subprotocol (v2) or `?token=` (v1), asked again for every reconnect when it is a
   *   function; `WebSocket`, `setTimeout`, `clearTimeout` and `random` are for
   *   environments and tests that bring their own.
   */
  constructor(url, options = {}) {
    super();
    this.url = url;
    this.options = { ...DEFAULTS, ...options };
    this.protocol = this.options.protocol === 1 ? 1 : 2;
    this._WebSocket = options.WebSocket ?? globalThis.WebSocket;
    this._setTimeout = options.setTimeout ?? ((fn, ms) => setTimeout(fn, ms));
    this._clearTimeout = options.clearTimeout ?? ((handle) => clearTimeout(handle));
    this._random = options.random ?? Math.random;
    this.state = "idle"; // idle | connecting | open | reconnecting | closed
    this.ws = null;
    this.roomId = null;
    this.myId = null;
    this.peers = new Set();
    this.iceServers = [];
    this._token = null;
    this._seq = new SeqTracker();
    this._attempt = 0;
    this._timer = null;
    this._resuming = false;
    this._pending = null;
    this._queue = Promise.resolve();
    this._outbox = [];
    this._opened = null;
    this._generation = 0; // bumped per socket attempt; a stale token answer is dropped
    this._userClosed = false;
  }

  /** The `seq` of the last message delivered to the application (v2). */
  get lastSeq() {
    return this._seq.last;
  }

  /** Open the socket (create/join do it for you). Resolves once it is open. */
  connect() {
    if (this._opened && (this.state === "open" || this.state === "connecting")) return this._opened;
    if (this.state === "reconnecting") this._abandonSession();
    this._userClosed = false;
    return this._open("connecting");
  }

  /** Create a room; resolves to `{roomId, myId, peers, iceServers}`. */
  create() {
    return this._request("create", { type: "create" });
  }

  /** Join room `roomId`; resolves to `{roomId, myId, peers, iceServers}`. */
  join(roomId) {
    return this._request("join", { type: "join", roomId: String(roomId) });
  }

  /** Leave the room for good (v2: the server confirms; v1: the socket is closed). */
  leave() {
    const run = async () => {
      if (this.protocol === 1 || this.state === "reconnecting") {
        this._abandonSession();
        return;
      }
      if (!this.roomId || !this.ws) throw new SignalingError("not_in_room", "Not in a room");
      await new Promise((resolve, reject) => {
        this._pending = { kind: "leave", resolve, reject };
        this.ws.send(JSON.stringify({ type: "leave" }));
      });
    };
    return this._enqueue(run);
  }

  /**
   * Send `payload` (any JSON value) to everyone else in the room, or only to `to` (v2).
   * While reconnecting the signal is kept and sent after the resume. Returns false when
   * it could not be sent or kept.
   */
  signal(payload, { to } = {}) {
    if (to != null && this.protocol !== 2) {
      throw new SignalingError("bad_message", "Directed signals need protocol v2");
    }
    const message = { type: "signal", payload };
    if (to != null) message.to = to;
    const text = JSON.stringify(message);
    if (this.state === "reconnecting") {
      if (this._outbox.length >= this.options.maxBuffered) {
        this.emit("error", { code: "buffer_full", message: "Too many signals while reconnecting" });
        return false;
      }
      this._outbox.push(text);
      return true;
    }
    if (!this.ws || this.state !== "open") {
      throw new SignalingError("not_connected", "Not connected: create or join first");
    }
    this.ws.send(text);
    return true;
  }

  /** Close for good: no resume; the server lets the v2 peer go after its grace period. */
  close() {
    this._userClosed = true;
    this._generation += 1;
    this._cancelTimer();
    const ws = this.ws;
    this.ws = null;
    this._clearRoom();
    this._outbox = [];
    if (ws) ws.close(1000, "bye");
    this._rejectPending("closed", "Client closed");
    this._setState("closed");
  }

  // ---- internals ------------------------------------------------------------------------

  _enqueue(run) {
    const result = this._queue.then(run, run);
    this._queue = result.catch(() => {});
    return result;
  }

  _request(kind, message) {
    return this._enqueue(async () => {
      if (this.state === "reconnecting") this._abandonSession();
      await this.connect();
      return new Promise((resolve, reject) => {
        this._pending = { kind, resolve, reject };
        this.ws.send(JSON.stringify(message));
      });
    });
  }

  _open(state) {
    this._setState(state);
    const generation = ++this._generation;
    const token =
      typeof this.options.token === "function" ? this.options.token() : this.options.token;
    if (token && typeof token.then === "function") {
      // A token source (fresh JWTs expire): the socket opens once it has answered.
      this.ws = null;
      this._opened = Promise.resolve(token).then(
        (value) => {
          if (generation !== this._generation) throw new SignalingError("closed", "Superseded");
          return this._socket(value);
        },
        (err) => {
          if (generation === this._generation) this._onClose({ code: 1006, reason: "token" });
          throw err;
        },
      );
    } else {
      this._opened = this._socket(token);
    }
    this._opened.catch(() => {});
    return this._opened;
  }

  _socket(token) {
    let url = this.url;
    const protocols = this.protocol === 2 ? [V2_SUBPROTOCOL] : [];
    if (token && this.protocol === 2) {
      protocols.push(`bearer.${token}`); // browsers cannot set an Authorization header
    } else if (token) {
      const withToken = new URL(url);
      withToken.searchParams.set("token", token);
      url = withToken.toString();
    }
    const ws = new this._WebSocket(url, protocols);
    this.ws = ws;
    return new Promise((resolve, reject) => {
      ws.onopen = () => {
        if (ws !== this.ws) return;
        resolve();
        this._onOpen();
      };
      ws.onmessage = (event) => {
        if (ws === this.ws) this._onMessage(event.data);
      };
      ws.onclose = (event) => {
        if (ws !== this.ws) return;
        this.ws = null;
        reject(new SignalingError("closed", `Socket closed (${event.code})`));
        this._onClose(event);
      };
      ws.onerror = () => {}; // a close event follows
    });
  }

  _onOpen() {
    if (this.state === "reconnecting") {
      this._resuming = true;
      this.ws.send(
        JSON.stringify({
          type: "resume",
          roomId: this.roomId,
          peerId: this.myId,
          resumeToken: this._token,
          lastSeq: this._seq.last,
        }),
      );
    } else {
      this._setState("open");
    }
  }

  _onMessage(data) {
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      this.emit("error", { code: "bad_json", message: "The server sent invalid JSON" });
      return;
    }
    if (msg === null || typeof msg !== "object") return;
    // Exactly once: a message this client already delivered (a replay overlap) is dropped.
    if (!POSITION_MESSAGES.has(msg.type) && !this._seq.accept(msg.seq)) return;
    switch (msg.type) {
      case "room_created":
      case "room_joined":
        this._entered(msg);
        break;
      case "resumed":
        this._resumed(msg);
        break;
      case "peer_joined":
        this.peers.add(msg.peerId);
        this.emit("peer_joined", { peerId: msg.peerId, seq: msg.seq });
        break;
      case "peer_left":
        this.peers.delete(msg.peerId);
        this.emit("peer_left", { peerId: msg.peerId, reason: msg.reason, seq: msg.seq });
        break;
      case "signal":
        this.emit("signal", { from: msg.senderId, payload: msg.payload, seq: msg.seq });
        break;
      case "ice_servers":
        this.iceServers = msg.iceServers ?? [];
        this.emit("ice_servers", { iceServers: this.iceServers });
        break;
      case "left":
        this._clearRoom();
        this._settle("leave", undefined);
        break;
      case "room_expired":
        this._expired(msg.roomId);
        break;
      case "error":
        this._onError(msg);
        break;
      default:
        break; // newer servers may add messages
    }
  }

  _entered(msg) {
    this.roomId = msg.roomId;
    this.myId = msg.myId;
    this.peers = new Set(msg.peers ?? []);
    this._token = msg.resumeToken ?? null;
    this._seq.reset(typeof msg.seq === "number" ? msg.seq : 0);
    if (msg.iceServers) this.iceServers = msg.iceServers;
    const room = this._roomInfo(msg.type === "room_created");
    this._settle(msg.type === "room_created" ? "create" : "join", room);
    this.emit("room", room);
  }

  _resumed(msg) {
    // Keep the last delivered seq: the replay that follows starts right after it.
    this._resuming = false;
    this._attempt = 0;
    this.myId = msg.myId;
    this.peers = new Set(msg.peers ?? []);
    if (msg.iceServers) this.iceServers = msg.iceServers;
    this._setState("open");
    this.emit("resumed", this._roomInfo(false));
    if (msg.iceServers) this.emit("ice_servers", { iceServers: this.iceServers });
    const outbox = this._outbox;
    this._outbox = [];
    for (const text of outbox) this.ws.send(text);
  }

  _roomInfo(created) {
    return {
      roomId: this.roomId,
      myId: this.myId,
      peers: [...this.peers],
      iceServers: this.iceServers,
      created,
    };
  }

  _onError(msg) {
    const code = msg.code ?? "error";
    const message = msg.message ?? "";
    if (this._resuming) {
      if (TRANSIENT_ERRORS.has(code)) {
        // The room is busy or its journal hiccuped, not gone: ask again a little later on
        // the same socket (after `retryAfterMs` when the server says how long).
        const ws = this.ws;
        const delay =
          typeof msg.retryAfterMs === "number"
            ? msg.retryAfterMs
            : backoffDelay(this._attempt++, this.options, this._random);
        this._timer = this._setTimeout(() => {
          this._timer = null;
          if (ws === this.ws && ws !== null) this._onOpen();
        }, delay);
        return;
      }
      this._resumeFailed(code, message);
      return;
    }
    const pending = this._pending;
    if (
      pending &&
      ((pending.kind !== "leave" && ENTRY_ERRORS.has(code)) ||
        (pending.kind === "leave" && code === "not_in_room"))
    ) {
      this._pending = null;
      pending.reject(new SignalingError(code, message));
    }
    this.emit("error", { code, message });
  }

  _resumeFailed(code, message) {
    const roomId = this.roomId;
    const dropped = this._outbox.length;
    this._resuming = false;
    this._attempt = 0;
    this._outbox = [];
    this._clearRoom();
    this._setState(this.ws ? "open" : "closed");
    this.emit("resume_failed", { roomId, code, message, dropped });
    if (this.options.rejoin && roomId) {
      this.join(roomId).then(
        (room) => this.emit("rejoined", room),
        (err) => this.emit("error", { code: err.code ?? "error", message: err.message }),
      );
    }
  }

  _expired(roomId) {
    if (!this.roomId) return;
    this._clearRoom();
    this._outbox = [];
    this.emit("room_expired", { roomId: roomId ?? null });
  }

  _onClose(event) {
    this._cancelTimer();
    if (this._userClosed) {
      this._setState("closed");
      return;
    }
    if (event.code === ROOM_EXPIRED) {
      this._rejectPending("room_expired", "Room expired");
      this._expired(this.roomId);
      this._setState("closed");
      return;
    }
    if (event.code === RESUMED_ELSEWHERE) {
      this._rejectPending("resumed_elsewhere", "Resumed elsewhere");
      this._clearRoom();
      this._outbox = [];
      this._setState("closed");
      this.emit("error", { code: "resumed_elsewhere", message: "Another connection took over" });
      return;
    }
    const resumable =
      this.protocol === 2 && this.options.reconnect && this.roomId !== null && this._token;
    if (!resumable) {
      this._rejectPending("closed", `Socket closed (${event.code})`);
      this._clearRoom();
      this._setState("closed");
      return;
    }
    this._resuming = false;
    if (this._attempt >= this.options.maxAttempts) {
      this._resumeFailed("unreachable", "Gave up reconnecting");
      return;
    }
    this._setState("reconnecting");
    const delay = backoffDelay(this._attempt++, this.options, this._random);
    this._timer = this._setTimeout(() => {
      this._timer = null;
      if (this.state === "reconnecting") this._open("reconnecting");
    }, delay);
  }

  _abandonSession() {
    // The application wants something else (a new room, leave): forget the old session.
    this._generation += 1;
    this._cancelTimer();
    this._resuming = false;
    this._attempt = 0;
    this._outbox = [];
    this._clearRoom();
    const ws = this.ws;
    this.ws = null;
    if (ws) ws.close(1000, "bye");
    this._setState("closed");
  }

  _settle(kind, value) {
    const pending = this._pending;
    if (pending && pending.kind === kind) {
      this._pending = null;
      pending.resolve(value);
    }
  }

  _rejectPending(code, message) {
    const pending = this._pending;
    if (pending) {
      this._pending = null;
      pending.reject(new SignalingError(code, message));
    }
  }

  _clearRoom() {
    this.roomId = null;
    this._token = null;
    this.peers = new Set();
    this._seq.reset(0);
  }

  _cancelTimer() {
    if (this._timer !== null) {
      this._clearTimeout(this._timer);
      this._timer = null;
    }
  }

  _setState(state) {
    if (state === this.state) return;
    const previous = this.state;
    this.state = state;
    this.emit("state", { state, previous });
  }
}
