// The package entry: the client and the mesh helper.
export * from "./signaling.js";
export { Mesh } from "./mesh.js";
