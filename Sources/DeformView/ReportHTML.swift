import Foundation

/// Float32 values as base64 of their little-endian bytes — the compact form the viewer decodes
/// with `atob` into a `Float32Array` (4 bytes per value, +33% for base64, versus ~10 for text).
public func base64Float32(_ values: [Float]) -> String {
    // Every platform Swift and browsers run on is little-endian; the assertion documents the layout.
    assert(1.littleEndian == 1)
    return values.withUnsafeBufferPointer { Data(buffer: $0) }.base64EncodedString()
}

/// The inverse of ``base64Float32(_:)``; `nil` for text that is not base64 of a multiple of 4 bytes.
public func decodeBase64Float32(_ text: String) -> [Float]? {
    guard let data = Data(base64Encoded: text.trimmingCharacters(in: .whitespacesAndNewlines)),
          data.count % 4 == 0 else { return nil }
    return data.withUnsafeBytes { raw in (0..<data.count / 4).map { raw.load(fromByteOffset: 4 * $0, as: Float.self) } }
}

/// Colours of the two point sets, shared by the viewer and its legend (and the PNG previews: ``Palette``).
let predictionColor = Palette.prediction.hex, groundTruthColor = Palette.groundTruth.hex, errorLineColor = Palette.errorLine.hex

extension RunReport {
    /// One self-contained HTML page: tables, inline SVG plots, pictures and WebGL viewers whose
    /// data and script are embedded, so the file opens offline and can be mailed or archived alone.
    public func html() -> String {
        var body = "<h1>\(escapeHTML(title))</h1>\n"
        if !notes.isEmpty {
            body += "<section class=\"notes\"><h2>Missing or skipped</h2><ul>\n"
            body += notes.map { "<li>\(escapeHTML($0))</li>" }.joined(separator: "\n")
            body += "\n</ul></section>\n"
        }
        if let metrics { body += "<section><h2>Metrics</h2>\n\(table(metrics))</section>\n" }
        var viewers = 0
        if prediction != nil || groundTruth != nil { body += pointViewerSection(); viewers += 1 }
        for scene in scenes { body += sceneSection(scene); viewers += 1 }
        if !images.isEmpty { body += imageSection() }
        if !depthMaps.isEmpty { body += depthSection() }
        let plots = plotSVGs()
        if !plots.isEmpty { body += "<section><h2>Plots</h2>\n" + plots.joined(separator: "\n") + "\n</section>\n" }
        if let config { body += "<section><h2>Configuration</h2>\n\(table(config))</section>\n" }
        if viewers > 0 { body += "<script>\(viewerScript)</script>\n" }
        return """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>\(escapeHTML(title)) — deform report</title>
        <style>\(css)</style></head>
        <body>
        \(body)</body></html>

        """
    }

    /// The SVG plots: training loss, then per-frame series.
    public func plotSVGs() -> [String] {
        var out: [String] = []
        if let loss, !loss.isEmpty {
            let series = loss.map { PlotSeries(name: loss.count > 1 ? "restart \($0.restart)" : "training loss", xs: $0.steps, ys: $0.losses) }
            let ys = loss.flatMap(\.losses).filter(\.isFinite)
            let positive = ys.allSatisfy { $0 > 0 }
            let logY = positive && (ys.max() ?? 1) > 20 * (ys.min() ?? 1)
            out.append(LinePlot(title: "Training loss", xLabel: "step (iterations)", yLabel: "loss (objective value)" + (logY ? ", log scale" : ""),
                                series: series, logY: logY).svg())
        }
        for (key, steps, values) in logSeries {
            out.append(LinePlot(title: "log.jsonl: \(key)", xLabel: "step (iterations)", yLabel: "\(key) (log.jsonl units)",
                                series: [PlotSeries(name: key, xs: steps, ys: values)]).svg())
        }
        if let errorPerFrame {
            out.append(LinePlot(title: "Per-frame 3D error", xLabel: "frame (index)",
                                yLabel: "mean point distance (ground-truth units)",
                                series: [PlotSeries(name: "prediction vs ground truth", xs: errorPerFrame.indices.map(Double.init),
                                                    ys: errorPerFrame, color: predictionColor)]).svg())
        }
        for (key, values) in perFrameMetrics {
            let unit = key.lowercased().contains("percent") || key.lowercased().contains("normalizederror") ? "%" : "metrics.json units"
            out.append(LinePlot(title: "metrics.json: \(key)", xLabel: "frame (index)", yLabel: "\(key) (\(unit))",
                                series: [PlotSeries(name: key, xs: values.indices.map(Double.init), ys: values)]).svg())
        }
        return out
    }

    private func table(_ rows: [(key: String, value: String)]) -> String {
        "<table>\n" + rows.map { "<tr><th>\(escapeHTML($0.key))</th><td>\(escapeHTML($0.value))</td></tr>" }.joined(separator: "\n") + "\n</table>\n"
    }

    private func pointViewerSection() -> String {
        let shown = prediction ?? groundTruth!
        var meta = "{\"kind\":\"points\",\"frames\":\(shown.frames),\"points\":\(shown.points),\"fps\":30,\"flip\":true"
        meta += ",\"predColor\":\"\(predictionColor)\",\"gtColor\":\"\(groundTruthColor)\",\"lineColor\":\"\(errorLineColor)\""
        if let errorPerFrame {
            meta += ",\"error\":[" + errorPerFrame.map { $0.isFinite ? String(format: "%.6g", $0) : "null" }.joined(separator: ",") + "]"
        }
        meta += "}"
        var legend = ""
        if prediction != nil { legend += toggle("pred", predictionColor, "prediction") }
        if groundTruth != nil { legend += toggle("gt", groundTruthColor, "ground truth") }
        if prediction != nil && groundTruth != nil { legend += toggle("lines", errorLineColor, "error (prediction to ground truth)", line: true) }
        if edges != nil { legend += "<label><input type=\"checkbox\" data-toggle=\"edges\" checked>skeleton</label>" }
        var hint = "Initial view: from the input camera (x right, y down, z away)."
        if groundTruth != nil && prediction != nil {
            hint += " Both point sets are centred per frame and the prediction's depth is mirrored where that fits the ground truth better (the ambiguity of an orthographic camera)."
        }
        if let groundTruthSource { hint += " Ground truth: points_3d of \(URL(fileURLWithPath: groundTruthSource).lastPathComponent)." }
        var arrays: [(String, String)] = []
        if let prediction { arrays.append(("pos", base64Float32(prediction.xyz))) }
        if let groundTruth { arrays.append((prediction == nil ? "pos" : "gt", base64Float32(groundTruth.xyz))) }
        if prediction == nil {
            // Ground truth alone: it is the one set drawn, in its own colour, under its own toggle.
            meta = meta.replacingOccurrences(of: "\"predColor\":\"\(predictionColor)\"", with: "\"predColor\":\"\(groundTruthColor)\"")
            meta = String(meta.dropLast()) + ",\"posToggle\":\"gt\"}"
        }
        if let edges { arrays.append(("edges", base64UInt32(edges))) }
        return viewerPanel(heading: "3D points over time", meta: meta, arrays: arrays, legend: legend, frames: shown.frames, hint: hint)
    }

    private func sceneSection(_ scene: ScenePanel) -> String {
        var arrays: [(String, String)] = []
        let heading: String, hint: String
        var meta: String
        let frameNote = scene.yDown ? "Shown with y up (the file's y axis points down, as in a camera frame)." : "Shown with the file's y axis up."
        switch scene.content {
        case let .mesh(mesh) where mesh.triangles.isEmpty:
            heading = "Point cloud: \(scene.title) (\(mesh.vertexCount) points)"
            meta = "{\"kind\":\"cloud\",\"flip\":\(scene.yDown),\"color\":\"#555555\"}"
            arrays.append(("pos", base64Float32(mesh.positions)))
            if let colors = mesh.colors { arrays.append(("col", Data(colors).base64EncodedString())) }
            hint = frameNote
        case let .mesh(mesh):
            heading = "Mesh: \(scene.title) (\(mesh.vertexCount) vertices, \(mesh.triangleCount) triangles)"
            meta = "{\"kind\":\"mesh\",\"flip\":\(scene.yDown),\"color\":\"#b8b8b8\"}"
            arrays.append(("pos", base64Float32(mesh.positions)))
            arrays.append(("idx", base64UInt32(mesh.triangles)))
            if let colors = mesh.colors { arrays.append(("col", Data(colors).base64EncodedString())) }
            hint = frameNote + " Lit from the viewer; vertex colours when the file has them, else grey."
        case let .gaussians(cloud):
            heading = "Gaussians: \(scene.title) (\(cloud.count), SH degree \(cloud.shDegree))"
            meta = "{\"kind\":\"gaussians\",\"flip\":\(scene.yDown)}"
            arrays.append(("pos", base64Float32(cloud.means)))
            var rgba = [UInt8](repeating: 0, count: 4 * cloud.count), size = [Float](repeating: 0, count: cloud.count)
            for i in 0..<cloud.count {
                for k in 0..<3 { rgba[4 * i + k] = UInt8((cloud.baseColors[3 * i + k] * 255).rounded()) }
                rgba[4 * i + 3] = UInt8((min(max(cloud.opacities[i], 0), 1) * 255).rounded())
                // The splat's diameter covers ±3 standard deviations of its largest axis.
                size[i] = 6 * max(cloud.scales[3 * i], cloud.scales[3 * i + 1], cloud.scales[3 * i + 2])
            }
            arrays.append(("col", Data(rgba).base64EncodedString()))
            arrays.append(("size", base64Float32(size)))
            hint = frameNote + " Each Gaussian is drawn as a round splat of its base colour (the constant spherical-harmonic term) and opacity, "
                + "as wide as ±3 standard deviations of its largest axis, sorted back to front."
        }
        let toggleFlip = "<button class=\"flip\" type=\"button\">Flip up axis</button>"
        meta = String(meta.dropLast()) + ",\"title\":\"\(jsonEscape(scene.title))\"}"
        return viewerPanel(heading: heading, meta: meta, arrays: arrays, legend: "", frames: 1, hint: hint, extraControls: toggleFlip)
    }

    private func toggle(_ name: String, _ color: String, _ text: String, line: Bool = false) -> String {
        "<label><input type=\"checkbox\" data-toggle=\"\(name)\" checked><span class=\"sw\(line ? " line" : "")\" style=\"background:\(color)\"></span>\(escapeHTML(text))</label>"
    }

    /// One viewer: canvas, controls, hint, and its data as `<script>` blocks the shared script reads.
    private func viewerPanel(heading: String, meta: String, arrays: [(String, String)], legend: String, frames: Int, hint: String,
                             extraControls: String = "") -> String {
        var s = "<section><h2>\(escapeHTML(heading))</h2>\n<div class=\"deform-viewer\">\n"
        if !legend.isEmpty { s += "<div class=\"legend\">\(legend)</div>\n" }
        s += "<div class=\"viewer\"><canvas width=\"800\" height=\"520\" tabindex=\"0\"></canvas>"
        s += "<div class=\"nogl\" hidden>This browser has no WebGL; the 3D view is unavailable.</div></div>\n"
        s += "<div class=\"controls\">"
        if frames > 1 { s += "<button class=\"play\" type=\"button\">Play</button> " }
        s += "<button class=\"reset\" type=\"button\">Reset view</button> \(extraControls)"
        if frames > 1 { s += " <input class=\"frame\" type=\"range\" min=\"0\" max=\"\(frames - 1)\" value=\"0\" step=\"1\" aria-label=\"frame\">" }
        s += " <span class=\"frame-label\"></span></div>\n"
        s += "<p class=\"hint\">Drag: orbit. Wheel: zoom. Shift-drag or right-drag: pan."
        if frames > 1 { s += " Space: play/pause. Arrow keys: previous/next frame." }
        s += " \(escapeHTML(hint))</p>\n"
        s += "<script data-name=\"meta\" type=\"application/json\">\(meta)</script>\n"
        for (name, data) in arrays { s += "<script data-name=\"\(name)\" type=\"application/x-base64\">\(data)</script>\n" }
        s += "</div></section>\n"
        return s
    }

    private func imageSection() -> String {
        var s = "<section><h2>Images</h2>\n<div class=\"images\">\n"
        for image in images {
            s += "<figure><img src=\"data:\(image.mime);base64,\(image.bytes.base64EncodedString())\" \(displaySize(image.width, image.height)) alt=\"\(escapeHTML(image.title))\">"
            s += "<figcaption>\(escapeHTML(image.title)) (\(image.width)×\(image.height))</figcaption></figure>\n"
        }
        return s + "</div></section>\n"
    }

    private func depthSection() -> String {
        var s = "<section><h2>Depth</h2>\n"
        guard let coloured = try? colouredDepthPNGs() else { return s + "<p>The depth maps could not be coloured.</p></section>\n" }
        if let range = commonDepthRange() { s += depthColourBar(range) }
        s += "<div class=\"images\">\n"
        for (map, (title, png)) in zip(depthMaps, coloured) {
            s += "<figure><img src=\"data:image/png;base64,\(png.base64EncodedString())\" \(displaySize(map.width, map.height)) alt=\"\(escapeHTML(title))\">"
            s += "<figcaption>\(escapeHTML(title)) (\(map.width)×\(map.height))</figcaption></figure>\n"
        }
        return s + "</div></section>\n"
    }

    /// The shared depth colour bar: near (bright) on the left to far (dark) on the right.
    private func depthColourBar(_ range: ClosedRange<Float>) -> String {
        let stops = (0...8).map { i -> String in
            let t = Double(i) / 8
            return "<stop offset=\"\(String(format: "%.3f", t))\" stop-color=\"\(ColorMap.viridis.hex(1 - t))\"/>"
        }.joined()
        func f(_ v: Float) -> String { String(format: "%.4g", v) }
        return """
        <svg class="colorbar" width="420" height="46" viewBox="0 0 420 46" role="img" aria-label="depth colour map">
        <defs><linearGradient id="depth-gradient">\(stops)</linearGradient></defs>
        <rect x="10" y="4" width="400" height="16" fill="url(#depth-gradient)" stroke="#888"/>
        <text x="10" y="36" font-size="12">near \(f(range.lowerBound))</text>
        <text x="210" y="36" font-size="12" text-anchor="middle">depth (units of the files; black: no depth)</text>
        <text x="410" y="36" font-size="12" text-anchor="end">far \(f(range.upperBound))</text>
        </svg>

        """
    }
}

/// `width`/`height` attributes: small images (thumbnails, 64-pixel training crops) are shown at
/// an integer zoom with sharp pixels, so they can be inspected; others at their own size.
func displaySize(_ width: Int, _ height: Int) -> String {
    let zoom = max(1, 192 / max(width, height, 1))
    return "width=\"\(width * zoom)\" height=\"\(height * zoom)\"" + (zoom > 1 ? " style=\"image-rendering:pixelated\"" : "")
}

/// UInt32 values as base64 of their little-endian bytes (index arrays for the viewer).
func base64UInt32(_ values: [UInt32]) -> String {
    values.withUnsafeBufferPointer { Data(buffer: $0) }.base64EncodedString()
}

func jsonEscape(_ s: String) -> String {
    var out = ""
    for c in s.unicodeScalars {
        switch c {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "<": out += "\\u003c"   // keeps "</script>" out of an inline script
        default: out += c.value < 0x20 ? String(format: "\\u%04x", c.value) : String(c)
        }
    }
    return out
}

private let css = """
body{font-family:sans-serif;margin:1.5em;max-width:1100px;color:#222}
h1{font-size:1.4em}h2{font-size:1.15em;border-bottom:1px solid #ddd;padding-bottom:.2em}
table{border-collapse:collapse;font-size:.9em}th,td{border:1px solid #ddd;padding:.2em .6em;text-align:left;vertical-align:top}
th{background:#f5f5f5;font-weight:normal;font-family:monospace}
.notes{background:#fff6e0;border:1px solid #f0d48a;padding:.2em 1em}
.viewer{position:relative;width:100%;max-width:900px;height:520px;border:1px solid #ccc}
.viewer canvas{width:100%;height:100%;display:block;cursor:grab;outline:none}
.deform-viewer.active .viewer{border-color:#0072b2}
.nogl{position:absolute;top:40%;width:100%;text-align:center}
.controls{margin:.5em 0}.controls .frame{width:55%;vertical-align:middle}
.legend label{margin-right:1.2em}.sw{display:inline-block;width:.9em;height:.9em;border-radius:50%;margin:0 .3em;vertical-align:middle}
.sw.line{height:.2em;border-radius:0}.hint{color:#666;font-size:.85em}svg.plot{display:block;margin:.5em 0}
.images{display:flex;flex-wrap:wrap;gap:1em;align-items:flex-start}
figure{margin:0}figure img{max-width:100%;height:auto;display:block;border:1px solid #ddd;image-rendering:auto}
figcaption{font-size:.8em;color:#555;font-family:monospace;margin-top:.2em}svg.colorbar{display:block;margin:.3em 0 .8em}
"""

/// The viewers: plain WebGL 1, written for these reports, no libraries. Every
/// `.deform-viewer` element on the page gets one, fed from its own data blocks.
private let viewerScript = """
(function(){
"use strict";
document.documentElement.dataset.viewerStartMs=performance.now().toFixed(1);
function bytes(el){var s=atob(el.textContent.trim()),b=new Uint8Array(s.length);for(var i=0;i<s.length;i++)b[i]=s.charCodeAt(i);return b.buffer;}
function arr(root,name,T){var el=root.querySelector('script[data-name="'+name+'"]');return el?new T(bytes(el)):null;}
function sub(a,b){return [a[0]-b[0],a[1]-b[1],a[2]-b[2]];}
function cross(a,b){return [a[1]*b[2]-a[2]*b[1],a[2]*b[0]-a[0]*b[2],a[0]*b[1]-a[1]*b[0]];}
function dot(a,b){return a[0]*b[0]+a[1]*b[1]+a[2]*b[2];}
function unit(a){var l=Math.hypot(a[0],a[1],a[2])||1;return [a[0]/l,a[1]/l,a[2]/l];}
function mul(a,b){var r=new Float32Array(16);for(var c=0;c<4;c++)for(var i=0;i<4;i++){var s=0;for(var k=0;k<4;k++)s+=a[k*4+i]*b[c*4+k];r[c*4+i]=s;}return r;}
function rgba(hex){return [1,3,5].map(function(i){return parseInt(hex.substr(i,2),16)/255;}).concat([1]);}
var viewers=[],active=null;
function setActive(v){if(active===v)return;if(active)active.root.classList.remove("active");active=v;v.root.classList.add("active");}
// Robust bounds: all finite points when few, else the 1st-99th percentile per axis of a sample,
// so a handful of far-away floaters does not shrink the object to a dot.
function bounds(sets){var lo=[Infinity,Infinity,Infinity],hi=[-Infinity,-Infinity,-Infinity],n=0;
sets.forEach(function(a){if(a)n+=a.length/3;});
if(n<=20000){sets.forEach(function(a){if(!a)return;for(var i=0;i<a.length;i++){var v=a[i];if(isFinite(v)){lo[i%3]=Math.min(lo[i%3],v);hi[i%3]=Math.max(hi[i%3],v);}}});}
else{var ax=[[],[],[]];sets.forEach(function(a){if(!a)return;var st=Math.max(1,Math.floor(a.length/3/20000));for(var i=0;i<a.length/3;i+=st)for(var k=0;k<3;k++){var v=a[3*i+k];if(isFinite(v))ax[k].push(v);}});
for(var k=0;k<3;k++){var s=ax[k].sort(function(x,y){return x-y;});if(s.length){lo[k]=s[Math.floor(0.01*(s.length-1))];hi[k]=s[Math.ceil(0.99*(s.length-1))];}}}
var c=[0,1,2].map(function(k){return isFinite(lo[k])?(lo[k]+hi[k])/2:0;});
// The radius is the distance of the farthest (99th-percentile when many) point from the centre:
// tighter than the box's half-diagonal, so the object fills the view.
var d=[];sets.forEach(function(a){if(!a)return;var st=Math.max(1,Math.floor(a.length/3/20000));for(var i=0;i<a.length/3;i+=st){
var r2=Math.hypot(a[3*i]-c[0],a[3*i+1]-c[1],a[3*i+2]-c[2]);if(isFinite(r2))d.push(r2);}});
d.sort(function(x,y){return x-y;});var r=d.length?d[n<=20000?d.length-1:Math.floor(0.99*(d.length-1))]:1;
return {center:c,radius:(isFinite(r)&&r>1e-9)?r:1};}
function Viewer(root){
var v=this;v.root=root;
var meta=JSON.parse(root.querySelector('script[data-name="meta"]').textContent);
var kind=meta.kind,F=meta.frames||1,P=meta.points||0,fov=45*Math.PI/180,cam={},frame=0;
v.frames=F;v.playing=false;v.last=0;v.fps=meta.fps||30;v.dirty=true;
var canvas=root.querySelector("canvas"),label=root.querySelector(".frame-label"),slider=root.querySelector("input.frame");
var playBtn=root.querySelector("button.play"),resetBtn=root.querySelector("button.reset"),flipBtn=root.querySelector("button.flip");
var pos=arr(root,"pos",Float32Array),gt=arr(root,"gt",Float32Array),col=arr(root,"col",Uint8Array),size=arr(root,"size",Float32Array);
var idx=arr(root,"idx",Uint32Array),edges=arr(root,"edges",Uint32Array),N=pos?pos.length/3:0;
root.dataset.decodedMs=performance.now().toFixed(1);
// Files in a camera frame (x right, y down, z away) are turned by pi about x to show y up.
function flipY(){[pos,gt].forEach(function(a){if(a)for(var i=0;i<a.length;i+=3){a[i+1]=-a[i+1];a[i+2]=-a[i+2];}});}
if(meta.flip)flipY();
function on(name){var el=root.querySelector('input[data-toggle="'+name+'"]');return !el||el.checked;}
v.reset=function(){var b=bounds([pos,gt]);cam.yaw=0;cam.pitch=kind==="points"?0:0.35;cam.dist=1.05*b.radius/Math.sin(fov/2);cam.target=b.center;cam.radius=b.radius;v.dirty=true;};
function setFrame(f){frame=((f%F)+F)%F;if(slider)slider.value=frame;
if(label&&F>1){var t="frame "+(frame+1)+" / "+F;if(meta.error&&meta.error[frame]!=null)t+=", mean error "+meta.error[frame].toPrecision(3);label.textContent=t;}v.dirty=true;}
v.step=function(d){setFrame(frame+d);};
v.togglePlay=function(){if(F<2)return;v.playing=!v.playing;if(playBtn)playBtn.textContent=v.playing?"Pause":"Play";};
if(slider)slider.addEventListener("input",function(){setActive(v);setFrame(parseInt(slider.value,10));});
// Controls give up focus after use: a focused button or checkbox would also react to the space
// key that toggles playback, undoing it.
if(playBtn)playBtn.addEventListener("click",function(){setActive(v);v.togglePlay();playBtn.blur();});
resetBtn.addEventListener("click",function(){v.reset();resetBtn.blur();});
if(flipBtn)flipBtn.addEventListener("click",function(){flipY();upload();v.reset();flipBtn.blur();});
Array.prototype.forEach.call(root.querySelectorAll("input[data-toggle]"),function(el){el.addEventListener("change",function(){v.dirty=true;el.blur();});});
root.addEventListener("mousedown",function(){setActive(v);},true);
canvas.addEventListener("focus",function(){setActive(v);});
var gl=canvas.getContext("webgl",{antialias:true})||canvas.getContext("experimental-webgl");
if(!gl){root.querySelector(".nogl").hidden=false;setFrame(0);v.draw=function(){};viewers.push(v);return;}
var uintExt=gl.getExtension("OES_element_index_uint");
function shader(type,src){var s=gl.createShader(type);gl.shaderSource(s,src);gl.compileShader(s);
if(!gl.getShaderParameter(s,gl.COMPILE_STATUS))throw new Error("deform viewer: shader: "+gl.getShaderInfoLog(s));return s;}
function program(vs,fs,attrs){var p=gl.createProgram();gl.attachShader(p,shader(gl.VERTEX_SHADER,vs));gl.attachShader(p,shader(gl.FRAGMENT_SHADER,fs));
attrs.forEach(function(a,i){gl.bindAttribLocation(p,i,a);});gl.linkProgram(p);
if(!gl.getProgramParameter(p,gl.LINK_STATUS))throw new Error("deform viewer: link: "+gl.getProgramInfoLog(p));
var u={};["m","k","px","mode","l"].forEach(function(n){u[n]=gl.getUniformLocation(p,n);});return {p:p,u:u};}
// Points, lines and splats: position, colour (array or constant) and world size (0: fixed pixel size).
var dots=program("attribute vec3 p;attribute vec4 c;attribute float s;uniform mat4 m;uniform float k;uniform float px;varying vec4 vc;"+
"void main(){gl_Position=m*vec4(p,1.0);vc=c;gl_PointSize=px>0.0?px:clamp(k*s/max(gl_Position.w,1e-6),1.5,128.0);}",
"precision mediump float;varying vec4 vc;uniform float mode;void main(){if(mode<0.5){gl_FragColor=vc;return;}"+
"vec2 d=gl_PointCoord-vec2(0.5);float q=dot(d,d);if(mode<1.5){if(q>0.25)discard;gl_FragColor=vc;return;}"+
"float a=vc.a*exp(-18.0*q);if(a<0.004)discard;gl_FragColor=vec4(vc.rgb*a,a);}",["p","c","s"]);
var shaded=program("attribute vec3 p;attribute vec4 c;attribute vec3 n;uniform mat4 m;uniform vec3 l;varying vec4 vc;"+
"void main(){gl_Position=m*vec4(p,1.0);float d=abs(dot(normalize(n),l));vc=vec4(c.rgb*(0.3+0.7*d),1.0);}",
"precision mediump float;varying vec4 vc;void main(){gl_FragColor=vc;}",["p","c","n"]);
function buffer(data,target,usage){var b=gl.createBuffer();gl.bindBuffer(target||gl.ARRAY_BUFFER,b);gl.bufferData(target||gl.ARRAY_BUFFER,data,usage||gl.STATIC_DRAW);return b;}
var posBuf,gtBuf,colBuf=col&&buffer(col),sizeBuf=size&&buffer(size),normBuf,idxBuf,idxType=gl.UNSIGNED_SHORT,idxCount=0;
var lines=new Float32Array(6*Math.max(P,edges?edges.length/2:0,1)),lineBuf=buffer(lines,gl.ARRAY_BUFFER,gl.DYNAMIC_DRAW),sortBuf,order;
// Meshes: area-weighted vertex normals; indices as 16-bit when they fit, else 32-bit (extension)
// or, failing that, unindexed triangles.
function upload(){[posBuf,gtBuf,normBuf,idxBuf,sortBuf].forEach(function(b){if(b)gl.deleteBuffer(b);});posBuf=buffer(pos);if(gt)gtBuf=buffer(gt);
if(kind==="mesh"){var nrm=new Float32Array(pos.length);for(var t=0;t<idx.length;t+=3){var a=idx[t]*3,b=idx[t+1]*3,c=idx[t+2]*3;
var e1=[pos[b]-pos[a],pos[b+1]-pos[a+1],pos[b+2]-pos[a+2]],e2=[pos[c]-pos[a],pos[c+1]-pos[a+1],pos[c+2]-pos[a+2]],f=cross(e1,e2);
for(var k=0;k<3;k++){nrm[a+k]+=f[k];nrm[b+k]+=f[k];nrm[c+k]+=f[k];}}normBuf=buffer(nrm);
if(N<=65536){idxBuf=buffer(new Uint16Array(idx),gl.ELEMENT_ARRAY_BUFFER);idxType=gl.UNSIGNED_SHORT;}
else if(uintExt){idxBuf=buffer(idx,gl.ELEMENT_ARRAY_BUFFER);idxType=gl.UNSIGNED_INT;}else{idxBuf=null;}idxCount=idx.length;
if(!idxBuf){var ep=new Float32Array(3*idx.length),en=new Float32Array(3*idx.length),ec=col?new Uint8Array(3*idx.length):null;
for(var i=0;i<idx.length;i++)for(var k=0;k<3;k++){ep[3*i+k]=pos[3*idx[i]+k];en[3*i+k]=nrm[3*idx[i]+k];if(ec)ec[3*i+k]=col[3*idx[i]+k];}
posBuf=buffer(ep);normBuf=buffer(en);if(ec)colBuf=buffer(ec);}}
if(kind==="gaussians"&&(N<=65536||uintExt)){order=N<=65536?new Uint16Array(N):new Uint32Array(N);sortBuf=buffer(order,gl.ELEMENT_ARRAY_BUFFER,gl.DYNAMIC_DRAW);}}
upload();
function eye(){var cp=Math.cos(cam.pitch);return [cam.target[0]+cam.dist*cp*Math.sin(cam.yaw),cam.target[1]+cam.dist*Math.sin(cam.pitch),cam.target[2]+cam.dist*cp*Math.cos(cam.yaw)];}
function axes(){var e=eye(),z=unit(sub(e,cam.target)),x=unit(cross([0,1,0],z));return {e:e,x:x,y:cross(z,x),z:z};}
function viewProj(){var a=axes(),e=a.e,x=a.x,y=a.y,z=a.z;
var vm=[x[0],y[0],z[0],0,x[1],y[1],z[1],0,x[2],y[2],z[2],0,-dot(x,e),-dot(y,e),-dot(z,e),1];
var n=Math.max(cam.dist-4*cam.radius,cam.dist*1e-3),f=cam.dist+4*cam.radius,t=1/Math.tan(fov/2),asp=canvas.width/canvas.height;
return mul([t/asp,0,0,0,0,t,0,0,0,0,(f+n)/(n-f),-1,0,0,2*f*n/(n-f),0],vm);}
function attr(i,buf,n,type,norm){if(buf){gl.bindBuffer(gl.ARRAY_BUFFER,buf);gl.enableVertexAttribArray(i);gl.vertexAttribPointer(i,n,type||gl.FLOAT,!!norm,0,0);}else gl.disableVertexAttribArray(i);}
function constColor(hex){gl.disableVertexAttribArray(1);gl.vertexAttrib4fv(1,rgba(hex));}
function drawDots(buf,first,count,mode,color,px){gl.useProgram(dots.p);attr(0,buf,3);constColor(color);gl.disableVertexAttribArray(2);gl.vertexAttrib1f(2,0);
gl.uniform1f(dots.u.px,px);gl.uniform1f(dots.u.mode,mode===gl.POINTS?1:0);gl.drawArrays(mode,first,count);}
// Back-to-front order of the splats by a counting sort on view depth (1024 buckets).
function sortSplats(){var a=axes(),z=a.z,e=a.e,B=1024,cnt=new Uint32Array(B+1),key=new Uint16Array(N),lo=Infinity,hi=-Infinity,d=new Float32Array(N);
for(var i=0;i<N;i++){var di=(pos[3*i]-e[0])*z[0]+(pos[3*i+1]-e[1])*z[1]+(pos[3*i+2]-e[2])*z[2];d[i]=di;if(di<lo)lo=di;if(di>hi)hi=di;}
var sc=(B-1)/Math.max(hi-lo,1e-12);for(var i=0;i<N;i++){var kk=Math.floor((d[i]-lo)*sc);key[i]=kk;cnt[kk+1]++;}
for(var b=0;b<B;b++)cnt[b+1]+=cnt[b];for(var i=0;i<N;i++)order[cnt[key[i]]++]=i;
gl.bindBuffer(gl.ELEMENT_ARRAY_BUFFER,sortBuf);gl.bufferSubData(gl.ELEMENT_ARRAY_BUFFER,0,order);}
v.draw=function(){var dpr=window.devicePixelRatio||1,w=Math.round(canvas.clientWidth*dpr),h=Math.round(canvas.clientHeight*dpr);
if(canvas.width!==w||canvas.height!==h){canvas.width=w;canvas.height=h;}
gl.viewport(0,0,canvas.width,canvas.height);gl.clearColor(1,1,1,1);gl.clear(gl.COLOR_BUFFER_BIT|gl.DEPTH_BUFFER_BIT);gl.enable(gl.DEPTH_TEST);gl.depthFunc(gl.LEQUAL);gl.depthMask(true);gl.disable(gl.BLEND);
var m=viewProj();gl.useProgram(dots.p);gl.uniformMatrix4fv(dots.u.m,false,m);gl.useProgram(shaded.p);gl.uniformMatrix4fv(shaded.u.m,false,m);
if(kind==="points"){var o=3*frame*P,posOn=on(meta.posToggle||"pred");
if(gt&&on("lines")){for(var i=0;i<P;i++)for(var k=0;k<3;k++){lines[6*i+k]=pos[o+3*i+k];lines[6*i+3+k]=gt[o+3*i+k];}
gl.bindBuffer(gl.ARRAY_BUFFER,lineBuf);gl.bufferSubData(gl.ARRAY_BUFFER,0,lines.subarray(0,6*P));drawDots(lineBuf,0,2*P,gl.LINES,meta.lineColor,1);}
if(edges&&on("edges"))[[pos,posOn,meta.predColor],[gt,on("gt"),meta.gtColor]].forEach(function(s){if(!s[0]||!s[1])return;var a=s[0],E=edges.length/2;
for(var j=0;j<E;j++)for(var k=0;k<3;k++){lines[6*j+k]=a[o+3*edges[2*j]+k];lines[6*j+3+k]=a[o+3*edges[2*j+1]+k];}
gl.bindBuffer(gl.ARRAY_BUFFER,lineBuf);gl.bufferSubData(gl.ARRAY_BUFFER,0,lines.subarray(0,6*E));drawDots(lineBuf,0,2*E,gl.LINES,s[2],1);});
if(gt&&on("gt"))drawDots(gtBuf,frame*P,P,gl.POINTS,meta.gtColor,7*dpr);
if(posOn)drawDots(posBuf,frame*P,P,gl.POINTS,meta.predColor,7*dpr);}
else if(kind==="mesh"){gl.useProgram(shaded.p);gl.uniform3fv(shaded.u.l,axes().z);attr(0,posBuf,3);attr(2,normBuf,3);
if(colBuf)attr(1,colBuf,3,gl.UNSIGNED_BYTE,true);else constColor(meta.color);
if(idxBuf){gl.bindBuffer(gl.ELEMENT_ARRAY_BUFFER,idxBuf);gl.drawElements(gl.TRIANGLES,idxCount,idxType,0);}else gl.drawArrays(gl.TRIANGLES,0,idxCount);}
else if(kind==="cloud"){gl.useProgram(dots.p);attr(0,posBuf,3);if(colBuf)attr(1,colBuf,3,gl.UNSIGNED_BYTE,true);else constColor(meta.color);
gl.disableVertexAttribArray(2);gl.vertexAttrib1f(2,0);gl.uniform1f(dots.u.px,(N>20000?2:4)*dpr);gl.uniform1f(dots.u.mode,1);gl.drawArrays(gl.POINTS,0,N);}
else if(kind==="gaussians"){gl.useProgram(dots.p);attr(0,posBuf,3);attr(1,colBuf,4,gl.UNSIGNED_BYTE,true);attr(2,sizeBuf,1);
gl.uniform1f(dots.u.px,0);gl.uniform1f(dots.u.k,canvas.height/(2*Math.tan(fov/2)));gl.uniform1f(dots.u.mode,2);
gl.enable(gl.BLEND);gl.blendFunc(gl.ONE,gl.ONE_MINUS_SRC_ALPHA);gl.depthMask(false);
if(sortBuf){sortSplats();gl.drawElements(gl.POINTS,N,N<=65536?gl.UNSIGNED_SHORT:gl.UNSIGNED_INT,0);}else gl.drawArrays(gl.POINTS,0,N);}
if(!root.dataset.firstDrawMs)root.dataset.firstDrawMs=performance.now().toFixed(1);};
var drag=null;
canvas.addEventListener("contextmenu",function(e){e.preventDefault();});
canvas.addEventListener("mousedown",function(e){drag={x:e.clientX,y:e.clientY,pan:e.shiftKey||e.button===2};canvas.focus();e.preventDefault();});
window.addEventListener("mouseup",function(){drag=null;});
window.addEventListener("mousemove",function(e){if(!drag)return;var dx=e.clientX-drag.x,dy=e.clientY-drag.y;drag.x=e.clientX;drag.y=e.clientY;
if(drag.pan){var a=axes(),k=cam.dist*2*Math.tan(fov/2)/canvas.clientHeight;for(var i=0;i<3;i++)cam.target[i]+=k*(-dx*a.x[i]+dy*a.y[i]);}
else{cam.yaw-=dx*0.01;cam.pitch=Math.max(-1.55,Math.min(1.55,cam.pitch+dy*0.01));}v.dirty=true;});
canvas.addEventListener("wheel",function(e){e.preventDefault();cam.dist*=Math.exp(e.deltaY*(e.deltaMode===1?0.05:0.0015));v.dirty=true;},{passive:false});
v.reset();setFrame(0);viewers.push(v);}
Array.prototype.forEach.call(document.querySelectorAll(".deform-viewer"),function(root){try{new Viewer(root);}catch(e){console.error(e&&e.message?e.message:e);}});
var animated=viewers.filter(function(v){return v.frames>1;});
if(animated.length)setActive(animated[0]);else if(viewers.length)setActive(viewers[0]);
// Keys go to the viewer last used (the first animated one until then).
document.addEventListener("keydown",function(e){var t=e.target.tagName;if(t==="TEXTAREA"||t==="SELECT"||(t==="INPUT"&&e.target.type!=="range"&&e.target.type!=="checkbox"))return;
var v=active&&active.frames>1?active:animated[0];if(!v)return;
if(e.key===" "){e.preventDefault();v.togglePlay();}else if(e.key==="ArrowRight"||e.key==="ArrowUp"){e.preventDefault();v.step(1);}
else if(e.key==="ArrowLeft"||e.key==="ArrowDown"){e.preventDefault();v.step(-1);}});
window.addEventListener("resize",function(){viewers.forEach(function(v){v.dirty=true;});});
// One viewer failing to draw must not stop the others.
function tick(t){viewers.forEach(function(v){try{if(v.playing&&t-v.last>=1000/v.fps){v.last=t;v.step(1);}if(v.dirty){v.dirty=false;v.draw();}}catch(e){console.error(e&&e.message?e.message:e);}});requestAnimationFrame(tick);}
requestAnimationFrame(tick);
})();
"""
