export * from "./signaling.js";
export * from "./mesh.js";
