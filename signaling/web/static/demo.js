// The demo call page: everything goes through the published client (/client/*.js).
// Query parameters: `room=4821` joins at once; `relay=1` forces TURN (iceTransportPolicy
// "relay") to check a TURN set-up; `token=<jwt>` when the server requires tokens.
import { SignalingClient } from "/client/signaling.js";
import { Mesh } from "/client/mesh.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/`;
// `token=<jwt>` when the server requires tokens (SIGNALING_JWT_*).
const client = new SignalingClient(url, { rejoin: true, token: params.get("token") || null });
const rtcConfig = params.get("relay") === "1" ? { iceTransportPolicy: "relay" } : {};
const mesh = new Mesh(client, { rtcConfig, dataChannel: "chat" });
const states = new Map();
const chat = []; // every chat line received, for people and for tests
const errors = []; // mesh errors (failed negotiation steps), for people and for tests
window.demo = { client, mesh, chat, errors };

const short = (id) => (id ? String(id).slice(0, 8) : "?");

function line(text, who) {
  const p = document.createElement("p");
  if (who) {
    const name = document.createElement("span");
    name.className = "who";
    name.textContent = who;
    p.append(name, document.createTextNode(text));
  } else {
    p.className = "sys";
    p.textContent = text;
  }
  $("log").append(p);
  $("log").scrollTop = $("log").scrollHeight;
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

function render() {
  const inRoom = client.roomId !== null;
  $("lobby").hidden = inRoom;
  $("room").hidden = !inRoom;
  $("chat").hidden = !inRoom;
  $("room-code").textContent = client.roomId ?? "";
  const members = $("members");
  members.replaceChildren();
  if (inRoom) {
    const me = document.createElement("li");
    me.textContent = `${short(client.myId)} (you)`;
    members.append(me);
    for (const peerId of client.peers) {
      const li = document.createElement("li");
      li.dataset.peer = peerId;
      li.textContent = short(peerId);
      const state = document.createElement("span");
      state.textContent = states.get(peerId) ?? "new";
      li.append(state);
      members.append(li);
    }
  }
  $("count").textContent = inRoom ? String(client.peers.size + 1) : "0";
}

client.on("state", ({ state }) => {
  $("state").textContent = state;
  $("state").dataset.state = state;
  render();
});
client.on("room", ({ roomId, created }) => {
  showError("");
  line(created ? `created room ${roomId}` : `joined room ${roomId}`);
  const query = { ...Object.fromEntries(params), room: roomId };
  delete query.token; // an invitation link must not hand out the inviter's token
  history.replaceState(null, "", `?${new URLSearchParams(query)}`);
  render();
});
client.on("peer_joined", ({ peerId }) => { line(`${short(peerId)} joined`); render(); });
client.on("peer_left", ({ peerId, reason }) => { states.delete(peerId); line(`${short(peerId)} ${reason}`); render(); });
client.on("resumed", () => line("connection restored"));
client.on("resume_failed", () => line("could not resume; joining again"));
client.on("room_expired", () => { line("the room expired"); render(); });
client.on("error", ({ message }) => showError(message));

mesh.on("state", ({ peerId, state }) => { states.set(peerId, state); render(); });
mesh.on("error", ({ peerId, error }) => {
  errors.push(`${short(peerId)}: ${error}`);
  console.warn("mesh", peerId, error);
});
mesh.on("channel_open", ({ peerId }) => line(`chat open with ${short(peerId)}`));
mesh.on("message", ({ peerId, data }) => {
  chat.push({ from: peerId, text: data });
  line(data, short(peerId));
});
mesh.on("track", ({ peerId, streams }) => {
  let video = document.querySelector(`video[data-peer="${CSS.escape(peerId)}"]`);
  if (!video) {
    video = document.createElement("video");
    video.dataset.peer = peerId;
    video.autoplay = video.playsInline = true;
    $("videos").append(video);
  }
  video.srcObject = streams[0] ?? null;
  $("media").hidden = false;
});
mesh.on("peer_closed", ({ peerId }) => {
  document.querySelector(`video[data-peer="${CSS.escape(peerId)}"]`)?.remove();
});

async function enter(action) {
  showError("");
  try {
    await action();
  } catch (err) {
    showError(err.message);
  }
}

$("create").onclick = () => enter(() => client.create());
$("join").onclick = () => enter(() => client.join($("code").value.trim()));
$("code").onkeydown = (event) => { if (event.key === "Enter") $("join").click(); };
$("leave").onclick = () => enter(async () => {
  await client.leave();
  line("left the room");
  render();
});
$("copy").onclick = () => navigator.clipboard?.writeText(location.href);
$("say").onsubmit = (event) => {
  event.preventDefault();
  const text = $("message").value;
  if (!text) return;
  mesh.send(text);
  line(text, "you");
  $("message").value = "";
};
$("camera").onchange = async (event) => {
  if (!event.target.checked) return;
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
    const video = document.createElement("video");
    video.muted = video.autoplay = video.playsInline = true;
    video.srcObject = stream;
    $("videos").prepend(video);
    $("media").hidden = false;
    mesh.setLocalStream(stream);
  } catch (err) {
    event.target.checked = false;
    showError(`camera: ${err.message}`);
  }
};

render();
if (params.get("room")) enter(() => client.join(params.get("room")));
