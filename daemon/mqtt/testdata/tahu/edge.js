// edge.js is an Eclipse Tahu edge node (npm sparkplug-client) for ember's
// interop tests: it connects with the credentials given, publishes its
// NBIRTH, a DBIRTH and one DDATA for device press4, and exits 0. A refused
// connection prints "refused <code> <message>" and exits 3.
//   node edge.js URL USERNAME PASSWORD
const sparkplug = require("sparkplug-client");
const [url, username, password] = process.argv.slice(2);
const client = sparkplug.newClient({
  serverUrl: url, username: username, password: password,
  groupId: "plant", edgeNode: "edge1", clientId: "tahu-edge1", version: "spBv1.0",
});
const now = () => new Date().getTime();
const fail = (err) => {
  console.log("refused", err && err.code, err && err.message);
  process.exit(3);
};
client.on("error", fail);
client.on("offline", () => fail({ code: "offline", message: "connection closed" }));
client.on("birth", () => {
  client.publishNodeBirth({ timestamp: now(), metrics: [{ name: "Node Control/Rebirth", type: "Boolean", value: false }] });
  client.publishDeviceBirth("press4", { timestamp: now(), metrics: [{ name: "temp", type: "Float", value: 20.5 }] });
  client.publishDeviceData("press4", { timestamp: now(), metrics: [{ name: "temp", type: "Float", value: 81.25 }] });
  console.log("published");
  setTimeout(() => { client.stop(); process.exit(0); }, 500);
});
setTimeout(() => fail({ code: "timeout", message: "no birth within 15s" }), 15000);
