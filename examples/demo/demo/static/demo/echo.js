// Opens a websocket to /ws/echo/ (served by daphne through nginx) and shows the echo.
(function () {
  var out = document.getElementById("echo");
  var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
  var ws = new WebSocket(scheme + window.location.host + "/ws/echo/");
  ws.onopen = function () { ws.send("hello from the browser"); };
  ws.onmessage = function (event) { out.textContent = "echoed: " + event.data; ws.close(); };
  ws.onerror = function () { out.textContent = "websocket failed"; };
}());
