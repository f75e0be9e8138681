const WebSocket = require('ws');

const url = 'ws://localhost:8080';

function makeClient(name) {
	const ws = new WebSocket(url);
	ws.on('open', () => console.log(`${name} open`));
	ws.on('message', (m) => console.log(`${name} recv:`, m.toString()));
	ws.on('close', () => console.log(`${name} close`));
	return ws;
}

(async () => {
	const a = makeClient('A');
	const b = makeClient('B');

	await new Promise(r => setTimeout(r, 200));

	a.send(JSON.stringify({ type: 'create' }));

	a.on('message', (msg) => {
		const data = JSON.parse(msg);
		if (data.type === 'room_created') {
			const roomId = data.roomId;
			console.log('Room created:', roomId);
			b.send(JSON.stringify({ type: 'join', roomId }));
			setTimeout(() => {
				b.send(JSON.stringify({ type: 'signal', payload: JSON.stringify({ type: 'dummy', text: 'hello from B' }) }));
			}, 200);
		}
	});
})();
