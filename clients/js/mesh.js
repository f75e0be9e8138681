// Mesh: one RTCPeerConnection per other member of the room, negotiated with the
// "perfect negotiation" pattern so that both sides may offer at any time (glare included).
//
// Who is polite is decided by peer id (the greater id is polite), so every pair has exactly
// one polite side without any extra message; the impolite side opens the DataChannel, so a
// new pair starts with a single offer. Mesh signals travel as `{mesh: {...}}` payloads
// directed at one peer (protocol v2), so the application's own signals pass untouched.
// A resume keeps every connection as it is: nothing is renegotiated after a network blip of
// the signaling socket. A fresh entry (create, join, rejoin after `resume_failed`) rebuilds
// the mesh from the member list.
//
//   const mesh = new Mesh(client);                 // a DataChannel "data" to every peer
//   mesh.on("message", ({ peerId, data }) => ...);
//   mesh.send("hello everyone");

import { Emitter } from "./signaling.js";

export class Mesh extends Emitter {
  /**
   * @param {import("./signaling.js").SignalingClient} client a v2 client
   * @param {object} [options] `rtcConfig` (RTCConfiguration; its `iceServers` win over the
   *   server's), `dataChannel` (label, or null for none; default "data"), `localStream`,
   *   `RTCPeerConnection` (constructor, for tests)
   */
  constructor(client, options = {}) {
    super();
    if (client.protocol !== 2) throw new Error("Mesh needs a protocol v2 client");
    this.client = client;
    this.rtcConfig = { ...(options.rtcConfig ?? {}) };
    this._ownIceServers = Array.isArray(this.rtcConfig.iceServers);
    this.channelLabel = options.dataChannel === undefined ? "data" : options.dataChannel;
    this.localStream = options.localStream ?? null;
    this._RTCPeerConnection = options.RTCPeerConnection ?? globalThis.RTCPeerConnection;
    this.peers = new Map();
    this.negotiations = 0; // offers this side has made, over all peers and all time
    this._unsubscribe = [
      client.on("room", ({ peers }) => this._rebuild(peers)),
      client.on("peer_joined", ({ peerId }) => this._peer(peerId)),
      client.on("peer_left", ({ peerId }) => this._drop(peerId)),
      client.on("signal", (signal) => this._signal(signal)),
      client.on("ice_servers", ({ iceServers }) => this.setIceServers(iceServers)),
      client.on("resume_failed", () => this._rebuild([])),
      client.on("room_expired", () => this._rebuild([])),
    ];
    if (client.roomId) this._rebuild([...client.peers]);
  }

  /** Send `data` on every open DataChannel; returns how many peers it went to. */
  send(data) {
    let sent = 0;
    for (const peer of this.peers.values()) {
      if (peer.channel && peer.channel.readyState === "open") {
        peer.channel.send(data);
        sent += 1;
      }
    }
    return sent;
  }

  /** Send `data` to one peer's DataChannel; false when it is not open. */
  sendTo(peerId, data) {
    const channel = this.peers.get(peerId)?.channel;
    if (!channel || channel.readyState !== "open") return false;
    channel.send(data);
    return true;
  }

  /** Share `stream`'s tracks with every peer, now and later (renegotiates as needed). */
  setLocalStream(stream) {
    this.localStream = stream;
    for (const peer of this.peers.values()) this._addTracks(peer);
  }

  /** New ICE servers (e.g. fresh TURN credentials); used by the next ICE gathering. */
  setIceServers(iceServers) {
    if (this._ownIceServers) return;
    for (const peer of this.peers.values()) {
      try {
        peer.pc.setConfiguration({ ...peer.pc.getConfiguration(), iceServers });
      } catch (error) {
        this.emit("error", { peerId: peer.id, error });
      }
    }
  }

  /** Close every connection and stop following the client. */
  close() {
    for (const off of this._unsubscribe) off();
    this._rebuild([]);
  }

  // ---- internals ------------------------------------------------------------------------

  _configuration() {
    const config = { ...this.rtcConfig };
    if (!this._ownIceServers) config.iceServers = this.client.iceServers ?? [];
    return config;
  }

  _rebuild(peerIds) {
    for (const peerId of [...this.peers.keys()]) this._drop(peerId);
    for (const peerId of peerIds) this._peer(peerId);
  }

  _peer(peerId) {
    const existing = this.peers.get(peerId);
    if (existing) return existing;
    const pc = new this._RTCPeerConnection(this._configuration());
    const peer = {
      id: peerId,
      pc,
      polite: String(this.client.myId) > String(peerId),
      makingOffer: false,
      ignoreOffer: false,
      settingRemoteAnswerPending: false,
      channel: null,
      offers: 0,
      candidateTypes: [],
      senders: new Map(),
    };
    this.peers.set(peerId, peer);
    const send = (message) => this._send(peerId, message);

    pc.onnegotiationneeded = async () => {
      try {
        peer.makingOffer = true;
        await pc.setLocalDescription();
        peer.offers += 1;
        this.negotiations += 1;
        send({ description: pc.localDescription.toJSON() });
      } catch (error) {
        this.emit("error", { peerId, error });
      } finally {
        peer.makingOffer = false;
      }
    };
    pc.onicecandidate = ({ candidate }) => {
      if (!candidate) return;
      peer.candidateTypes.push(candidate.type);
      send({ candidate: candidate.toJSON() });
    };
    pc.onconnectionstatechange = () => {
      this.emit("state", { peerId, state: pc.connectionState });
      if (pc.connectionState === "failed") pc.restartIce();
    };
    pc.ontrack = ({ track, streams }) => this.emit("track", { peerId, track, streams });
    if (this.channelLabel !== null) {
      // Only the impolite side opens the channel, so a new pair negotiates once, without
      // glare; the polite side takes the channel when it arrives.
      if (!peer.polite) this._channel(peer, pc.createDataChannel(this.channelLabel));
      pc.ondatachannel = ({ channel }) => {
        if (channel.label === this.channelLabel) this._channel(peer, channel);
      };
    }
    this._addTracks(peer);
    this.emit("peer", { peerId, pc, polite: peer.polite });
    return peer;
  }

  _channel(peer, channel) {
    peer.channel = channel;
    const peerId = peer.id;
    channel.onopen = () => this.emit("channel_open", { peerId });
    channel.onclose = () => this.emit("channel_close", { peerId });
    channel.onmessage = ({ data }) => this.emit("message", { peerId, data });
    if (channel.readyState === "open") this.emit("channel_open", { peerId });
  }

  _send(peerId, message) {
    try {
      this.client.signal({ mesh: message }, { to: peerId });
    } catch (error) {
      this.emit("error", { peerId, error }); // not connected: the next entry rebuilds anyway
    }
  }

  _addTracks(peer) {
    const stream = this.localStream;
    if (!stream) return;
    for (const track of stream.getTracks()) {
      if (!peer.senders.has(track.id)) peer.senders.set(track.id, peer.pc.addTrack(track, stream));
    }
  }

  _drop(peerId) {
    const peer = this.peers.get(peerId);
    if (!peer) return;
    this.peers.delete(peerId);
    peer.channel?.close();
    peer.pc.close();
    this.emit("peer_closed", { peerId });
  }

  async _signal({ from, payload }) {
    const message = payload && typeof payload === "object" ? payload.mesh : undefined;
    if (!message) return;
    // A late signal from someone who already left must not resurrect a connection.
    if (!this.peers.has(from) && !this.client.peers.has(from)) return;
    const peer = this._peer(from);
    const pc = peer.pc;
    try {
      if (message.description) {
        const description = message.description;
        const readyForOffer =
          !peer.makingOffer && (pc.signalingState === "stable" || peer.settingRemoteAnswerPending);
        const collision = description.type === "offer" && !readyForOffer;
        peer.ignoreOffer = !peer.polite && collision;
        if (peer.ignoreOffer) return;
        peer.settingRemoteAnswerPending = description.type === "answer";
        await pc.setRemoteDescription(description); // rolls back our offer when polite
        peer.settingRemoteAnswerPending = false;
        if (description.type === "offer") {
          await pc.setLocalDescription();
          this._send(from, { description: pc.localDescription.toJSON() });
        }
      } else if (message.candidate) {
        try {
          await pc.addIceCandidate(message.candidate);
        } catch (error) {
          if (!peer.ignoreOffer) throw error;
        }
      }
    } catch (error) {
      this.emit("error", { peerId: from, error });
    }
  }
}
