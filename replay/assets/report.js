/* geofence replay report: draws fences, tracks and alert markers from the inlined DATA object.
   Everything is local: no tiles, no fonts, no network. */
(function () {
  "use strict";
  var DATA = window.GEOFENCE_DATA;
  var KIND_COLOR = {
    port: "#1f77b4", berth: "#17becf", anchorage: "#2ca02c", fairway: "#7f7f7f",
    restricted: "#d62728", customs: "#9467bd", speed_limit: "#ff7f0e", lock: "#8c564b"
  };
  var SEVERITY_COLOR = { info: "#1f77b4", warning: "#ff7f0e", critical: "#d62728" };

  var map = L.map("map", { zoomSnap: 0.25, attributionControl: false });
  L.control.scale({ metric: true, imperial: false }).addTo(map);
  var svg = L.svg();
  var canvas = L.canvas();

  // Fences, coloured by kind.
  var fenceLayer = L.geoJSON(DATA.fences, {
    renderer: svg,
    style: function (f) {
      var c = KIND_COLOR[f.properties.kind] || "#333";
      return { color: c, weight: 1, fillColor: c, fillOpacity: 0.18, className: "fence fence-" + f.properties.kind };
    },
    onEachFeature: function (f, layer) {
      layer.bindPopup("<b>" + esc(f.properties.name) + "</b><br>" + esc(f.properties.id) + " (" + esc(f.properties.kind) + ")");
    }
  }).addTo(map);

  // Tracks: simplified polylines with the timestamps of their kept vertices.
  var trackLayers = {};
  DATA.tracks.forEach(function (t, i) {
    var hue = (i * 137.508) % 360;
    var line = L.polyline([], { renderer: canvas, color: "hsl(" + hue + ",70%,40%)", weight: 1.5, opacity: 0.8 });
    line.bindTooltip(t.id);
    trackLayers[t.id] = { data: t, layer: line };
    line.addTo(map);
  });

  // Alert markers: one per open or event line.
  var RADIUS = { info: 3, warning: 6, critical: 7 };
  var markers = DATA.alerts.map(function (a) {
    var m = L.circleMarker([a.lat, a.lon], {
      renderer: svg, radius: RADIUS[a.severity] || 5, weight: a.severity === "info" ? 1 : 2, color: "#000",
      fillColor: SEVERITY_COLOR[a.severity] || "#999", fillOpacity: 0.9,
      className: "alert-marker alert-" + a.type + " severity-" + a.severity
    });
    m.bindPopup("<b>" + esc(a.type) + "</b> (" + esc(a.status) + ", " + esc(a.severity) + ")<br>subject " + esc(a.subject_id) +
      (a.zone_id ? "<br>zone " + esc(a.zone_id) : "") + "<br>" + esc(a.ts) +
      "<pre>" + esc(JSON.stringify(a.details, null, 1)) + "</pre>");
    return { alert: a, marker: m };
  });

  // Controls.
  var tMin = DATA.time_range[0], tMax = DATA.time_range[1];
  var slider = document.getElementById("time");
  slider.min = 0; slider.max = 1000; slider.value = 1000;
  var typeBox = document.getElementById("types");
  var types = Object.keys(DATA.alerts_by_type).sort();
  types.forEach(function (ty) {
    var id = "type-" + ty;
    var label = document.createElement("label");
    label.innerHTML = '<input type="checkbox" checked id="' + id + '" value="' + esc(ty) + '"> ' + esc(ty) +
      " (" + DATA.alerts_by_type[ty] + ")";
    typeBox.appendChild(label);
    label.querySelector("input").addEventListener("change", refresh);
  });
  var subjectInput = document.getElementById("subject");
  var subjectList = document.getElementById("subjects");
  DATA.subjects_with_alerts.forEach(function (s) {
    var o = document.createElement("option"); o.value = s; subjectList.appendChild(o);
  });
  slider.addEventListener("input", refresh);
  subjectInput.addEventListener("input", refresh);

  function currentTime() { return tMin + (tMax - tMin) * (Number(slider.value) / 1000); }

  function refresh() {
    var t = currentTime();
    document.getElementById("time-label").textContent = new Date(t * 1000).toISOString().replace(".000Z", "Z");
    var enabled = {};
    typeBox.querySelectorAll("input").forEach(function (i) { enabled[i.value] = i.checked; });
    var subject = subjectInput.value.trim();
    var shown = 0;
    markers.forEach(function (m) {
      var a = m.alert;
      var visible = enabled[a.type] && a.ts_s <= t && (!subject || a.subject_id === subject);
      if (visible && !map.hasLayer(m.marker)) { m.marker.addTo(map); }
      if (!visible && map.hasLayer(m.marker)) { map.removeLayer(m.marker); }
      if (visible) { shown += 1; }
    });
    Object.keys(trackLayers).forEach(function (id) {
      var tr = trackLayers[id], d = tr.data, n = upperBound(d.t, t);
      var visible = !subject || id === subject;
      var pts = [];
      if (visible) { for (var k = 0; k < n; k++) { pts.push([d.lat[k], d.lon[k]]); } }
      tr.layer.setLatLngs(pts);
    });
    renderList(enabled, subject, t);
    document.getElementById("shown").textContent = shown;
    document.getElementById("map").setAttribute("data-markers", String(shown));
  }

  // The list of warnings and critical alerts (the ones an analyst acts on), filtered like the map.
  var listBox = document.getElementById("alert-list");
  var LIST_MAX = 300;
  function renderList(enabled, subject, t) {
    var rows = [], more = 0;
    markers.forEach(function (m, i) {
      var a = m.alert;
      if (a.severity === "info" || !enabled[a.type] || a.ts_s > t || (subject && a.subject_id !== subject)) { return; }
      if (rows.length >= LIST_MAX) { more += 1; return; }
      rows.push('<li data-i="' + i + '" class="sev-' + esc(a.severity) + '">' + esc(a.ts.replace("T", " ")) +
        " <b>" + esc(a.type) + "</b> " + esc(a.subject_id) + (a.zone_id ? " @ " + esc(a.zone_id) : "") + "</li>");
    });
    listBox.innerHTML = rows.join("") + (more ? "<li class=\"muted\">... " + more + " more</li>" : "") +
      (rows.length ? "" : "<li class=\"muted\">none</li>");
  }
  listBox.addEventListener("click", function (ev) {
    var li = ev.target.closest("li[data-i]");
    if (!li) { return; }
    var m = markers[Number(li.getAttribute("data-i"))];
    map.setView(m.marker.getLatLng(), Math.max(map.getZoom(), 12));
    m.marker.openPopup();
  });

  function upperBound(arr, x) {
    var lo = 0, hi = arr.length;
    while (lo < hi) { var mid = (lo + hi) >> 1; if (arr[mid] <= x) { lo = mid + 1; } else { hi = mid; } }
    return lo;
  }

  function esc(s) {
    return String(s === null || s === undefined ? "" : s).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }

  var bounds = L.latLngBounds([]);
  if (DATA.bbox) { bounds.extend([[DATA.bbox[1], DATA.bbox[0]], [DATA.bbox[3], DATA.bbox[2]]]); }
  if (bounds.isValid()) { map.fitBounds(bounds, { padding: [20, 20] }); } else { map.setView([30.5, 112], 5); }
  refresh();

  window.GEOFENCE_REPORT = {
    markerCount: function () { return document.querySelectorAll("path.alert-marker").length; },
    fenceCount: function () { return document.querySelectorAll("path.fence").length; },
    trackCount: function () { return Object.keys(trackLayers).length; },
    trackPointsDrawn: function () {
      return Object.keys(trackLayers).reduce(function (n, id) { return n + trackLayers[id].layer.getLatLngs().length; }, 0);
    },
    markerCountAll: function () { return markers.length; },
    ready: true
  };
})();
