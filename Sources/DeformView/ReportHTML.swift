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
    /// One self-contained HTML page: tables, inline SVG plots and a WebGL point viewer whose data
    /// and script are embedded, so the file opens offline and can be mailed or archived alone.
    public func html() -> String {
        var body = "<h1>\(escapeHTML(title))</h1>\n"
        if !notes.isEmpty {
            body += "<section class=\"notes\"><h2>Missing or skipped</h2><ul>\n"
            body += notes.map { "<li>\(escapeHTML($0))</li>" }.joined(separator: "\n")
            body += "\n</ul></section>\n"
        }
        if let metrics { body += "<section><h2>Metrics</h2>\n\(table(metrics))</section>\n" }
        if prediction != nil || groundTruth != nil { body += viewerSection() }
        let plots = plotSVGs()
        if !plots.isEmpty { body += "<section><h2>Plots</h2>\n" + plots.joined(separator: "\n") + "\n</section>\n" }
        if let config { body += "<section><h2>Configuration</h2>\n\(table(config))</section>\n" }
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

    private func viewerSection() -> String {
        let shown = prediction ?? groundTruth!
        var meta = "{\"frames\":\(shown.frames),\"points\":\(shown.points),\"fps\":30"
        meta += ",\"predColor\":\"\(predictionColor)\",\"gtColor\":\"\(groundTruthColor)\",\"lineColor\":\"\(errorLineColor)\""
        if let errorPerFrame {
            meta += ",\"error\":[" + errorPerFrame.map { $0.isFinite ? String(format: "%.6g", $0) : "null" }.joined(separator: ",") + "]"
        }
        meta += "}"
        var s = "<section><h2>3D points over time</h2>\n<div class=\"legend\">"
        if prediction != nil { s += "<label><input type=\"checkbox\" id=\"show-pred\" checked><span class=\"sw\" style=\"background:\(predictionColor)\"></span>prediction</label>" }
        if groundTruth != nil {
            s += "<label><input type=\"checkbox\" id=\"show-gt\" checked><span class=\"sw\" style=\"background:\(groundTruthColor)\"></span>ground truth</label>"
        }
        if prediction != nil && groundTruth != nil {
            s += "<label><input type=\"checkbox\" id=\"show-lines\" checked><span class=\"sw line\" style=\"background:\(errorLineColor)\"></span>error (prediction to ground truth)</label>"
        }
        s += "</div>\n"
        s += "<div class=\"viewer\"><canvas id=\"deform-canvas\" width=\"800\" height=\"520\" tabindex=\"0\"></canvas>"
        s += "<div id=\"deform-nogl\" class=\"nogl\" hidden>This browser has no WebGL; the 3D view is unavailable.</div></div>\n"
        s += "<div class=\"controls\"><button id=\"play\" type=\"button\">Play</button> <button id=\"reset\" type=\"button\">Reset view</button> "
        s += "<input id=\"frame\" type=\"range\" min=\"0\" max=\"\(shown.frames - 1)\" value=\"0\" step=\"1\"> <span id=\"frame-label\"></span></div>\n"
        s += "<p class=\"hint\">Drag: orbit. Wheel: zoom. Shift-drag or right-drag: pan. Space: play/pause. Arrow keys: previous/next frame. "
        s += "Initial view: from the input camera (x right, y down, z away)."
        if groundTruth != nil && prediction != nil {
            s += " Both point sets are centred per frame and the prediction's depth is mirrored where that fits the ground truth better (the ambiguity of an orthographic camera)."
        }
        if let groundTruthSource { s += " Ground truth: points_3d of \(escapeHTML(URL(fileURLWithPath: groundTruthSource).lastPathComponent))." }
        s += "</p>\n"
        s += "<script id=\"deform-meta\" type=\"application/json\">\(meta)</script>\n"
        if let prediction {
            s += "<script id=\"deform-pred\" type=\"application/x-float32-base64\">\(base64Float32(prediction.xyz))</script>\n"
        }
        if let groundTruth {
            s += "<script id=\"deform-gt\" type=\"application/x-float32-base64\">\(base64Float32(groundTruth.xyz))</script>\n"
        }
        s += "<script>\(viewerScript)</script>\n</section>\n"
        return s
    }
}

private let css = """
body{font-family:sans-serif;margin:1.5em;max-width:1100px;color:#222}
h1{font-size:1.4em}h2{font-size:1.15em;border-bottom:1px solid #ddd;padding-bottom:.2em}
table{border-collapse:collapse;font-size:.9em}th,td{border:1px solid #ddd;padding:.2em .6em;text-align:left;vertical-align:top}
th{background:#f5f5f5;font-weight:normal;font-family:monospace}
.notes{background:#fff6e0;border:1px solid #f0d48a;padding:.2em 1em}
.viewer{position:relative;width:100%;max-width:900px;height:520px;border:1px solid #ccc}
#deform-canvas{width:100%;height:100%;display:block;cursor:grab}
.nogl{position:absolute;top:40%;width:100%;text-align:center}
.controls{margin:.5em 0}#frame{width:60%;vertical-align:middle}
.legend label{margin-right:1.2em}.sw{display:inline-block;width:.9em;height:.9em;border-radius:50%;margin:0 .3em;vertical-align:middle}
.sw.line{height:.2em;border-radius:0}.hint{color:#666;font-size:.85em}svg.plot{display:block;margin:.5em 0}
"""

/// The viewer: plain WebGL 1, one shader pair, orbit camera; written for this report, no libraries.
private let viewerScript = """
(function(){
"use strict";
function f32(id){var el=document.getElementById(id);if(!el)return null;var s=atob(el.textContent.trim());
var b=new Uint8Array(s.length);for(var i=0;i<s.length;i++)b[i]=s.charCodeAt(i);return new Float32Array(b.buffer);}
var meta=JSON.parse(document.getElementById("deform-meta").textContent);
var F=meta.frames,P=meta.points,pred=f32("deform-pred"),gt=f32("deform-gt");
// Input camera frame (x right, y down, z away) to a y-up view: a rotation by pi about x.
function flip(a){if(a)for(var i=0;i<a.length;i+=3){a[i+1]=-a[i+1];a[i+2]=-a[i+2];}}
flip(pred);flip(gt);
var lo=[Infinity,Infinity,Infinity],hi=[-Infinity,-Infinity,-Infinity];
[pred,gt].forEach(function(a){if(!a)return;for(var i=0;i<a.length;i++){var v=a[i];if(isFinite(v)){lo[i%3]=Math.min(lo[i%3],v);hi[i%3]=Math.max(hi[i%3],v);}}});
var center=[0,1,2].map(function(k){return isFinite(lo[k])?(lo[k]+hi[k])/2:0;});
var radius=Math.max(1e-6,Math.hypot(hi[0]-lo[0],hi[1]-lo[1],hi[2]-lo[2])/2||1);
var fov=45*Math.PI/180,cam={};
function reset(){cam.yaw=0;cam.pitch=0;cam.dist=1.15*radius/Math.sin(fov/2);cam.target=center.slice();redraw();}
var canvas=document.getElementById("deform-canvas"),gl=canvas.getContext("webgl")||canvas.getContext("experimental-webgl");
var slider=document.getElementById("frame"),label=document.getElementById("frame-label"),playBtn=document.getElementById("play");
var frame=0,playing=false,dirty=true,last=0;
function setFrame(f){frame=((f%F)+F)%F;slider.value=frame;var t="frame "+(frame+1)+" / "+F;
if(meta.error&&meta.error[frame]!=null)t+=", mean error "+meta.error[frame].toPrecision(3);label.textContent=t;redraw();}
function redraw(){dirty=true;}
function togglePlay(){playing=!playing;playBtn.textContent=playing?"Pause":"Play";}
slider.addEventListener("input",function(){setFrame(parseInt(slider.value,10));});
// Controls give up focus after use: a focused button or checkbox would also react to the space
// key that toggles playback, undoing it.
playBtn.addEventListener("click",function(){togglePlay();playBtn.blur();});
var resetBtn=document.getElementById("reset");resetBtn.addEventListener("click",function(){reset();resetBtn.blur();});
["show-pred","show-gt","show-lines"].forEach(function(id){var el=document.getElementById(id);if(el)el.addEventListener("change",function(){redraw();el.blur();});});
function on(id){var el=document.getElementById(id);return !!(el&&el.checked);}
document.addEventListener("keydown",function(e){var t=e.target.tagName;if(t==="INPUT"&&e.target.type!=="range"&&e.target.type!=="checkbox")return;
if(e.key===" "){e.preventDefault();togglePlay();}else if(e.key==="ArrowRight"||e.key==="ArrowUp"){e.preventDefault();setFrame(frame+1);}
else if(e.key==="ArrowLeft"||e.key==="ArrowDown"){e.preventDefault();setFrame(frame-1);}});
if(!gl){document.getElementById("deform-nogl").hidden=false;setFrame(0);return;}
function sh(type,src){var s=gl.createShader(type);gl.shaderSource(s,src);gl.compileShader(s);return s;}
var prog=gl.createProgram();
gl.attachShader(prog,sh(gl.VERTEX_SHADER,"attribute vec3 p;uniform mat4 m;uniform float s;void main(){gl_Position=m*vec4(p,1.0);gl_PointSize=s;}"));
gl.attachShader(prog,sh(gl.FRAGMENT_SHADER,"precision mediump float;uniform vec4 c;uniform float r;void main(){if(r>0.5){vec2 d=gl_PointCoord-vec2(0.5);if(dot(d,d)>0.25)discard;}gl_FragColor=c;}"));
gl.linkProgram(prog);gl.useProgram(prog);
var aP=gl.getAttribLocation(prog,"p"),uM=gl.getUniformLocation(prog,"m"),uS=gl.getUniformLocation(prog,"s"),uC=gl.getUniformLocation(prog,"c"),uR=gl.getUniformLocation(prog,"r");
function buf(a,usage){var b=gl.createBuffer();gl.bindBuffer(gl.ARRAY_BUFFER,b);gl.bufferData(gl.ARRAY_BUFFER,a,usage);return b;}
var predBuf=pred&&buf(pred,gl.STATIC_DRAW),gtBuf=gt&&buf(gt,gl.STATIC_DRAW),lines=new Float32Array(6*P),lineBuf=buf(lines,gl.DYNAMIC_DRAW);
function rgba(hex){return [1,3,5].map(function(i){return parseInt(hex.substr(i,2),16)/255;}).concat([1]);}
function sub(a,b){return [a[0]-b[0],a[1]-b[1],a[2]-b[2]];}
function cross(a,b){return [a[1]*b[2]-a[2]*b[1],a[2]*b[0]-a[0]*b[2],a[0]*b[1]-a[1]*b[0]];}
function dot(a,b){return a[0]*b[0]+a[1]*b[1]+a[2]*b[2];}
function unit(a){var l=Math.hypot(a[0],a[1],a[2])||1;return [a[0]/l,a[1]/l,a[2]/l];}
function mul(a,b){var r=new Float32Array(16);for(var c=0;c<4;c++)for(var i=0;i<4;i++){var s=0;for(var k=0;k<4;k++)s+=a[k*4+i]*b[c*4+k];r[c*4+i]=s;}return r;}
function eye(){var cp=Math.cos(cam.pitch);return [cam.target[0]+cam.dist*cp*Math.sin(cam.yaw),cam.target[1]+cam.dist*Math.sin(cam.pitch),cam.target[2]+cam.dist*cp*Math.cos(cam.yaw)];}
function axes(){var e=eye(),z=unit(sub(e,cam.target)),x=unit(cross([0,1,0],z));return {e:e,x:x,y:cross(z,x),z:z};}
function viewProj(){var a=axes(),e=a.e,x=a.x,y=a.y,z=a.z;
var v=[x[0],y[0],z[0],0,x[1],y[1],z[1],0,x[2],y[2],z[2],0,-dot(x,e),-dot(y,e),-dot(z,e),1];
var n=Math.max(cam.dist-4*radius,cam.dist*1e-3),f=cam.dist+4*radius,t=1/Math.tan(fov/2),asp=canvas.width/canvas.height;
var p=[t/asp,0,0,0,0,t,0,0,0,0,(f+n)/(n-f),-1,0,0,2*f*n/(n-f),0];return mul(p,v);}
function drawSet(b,first,count,mode,color,size){gl.bindBuffer(gl.ARRAY_BUFFER,b);gl.enableVertexAttribArray(aP);
gl.vertexAttribPointer(aP,3,gl.FLOAT,false,0,0);gl.uniform4fv(uC,rgba(color));gl.uniform1f(uS,size);gl.uniform1f(uR,mode===gl.POINTS?1:0);gl.drawArrays(mode,first,count);}
function draw(){var dpr=window.devicePixelRatio||1,w=Math.round(canvas.clientWidth*dpr),h=Math.round(canvas.clientHeight*dpr);
if(canvas.width!==w||canvas.height!==h){canvas.width=w;canvas.height=h;}
gl.viewport(0,0,canvas.width,canvas.height);gl.clearColor(1,1,1,1);gl.clear(gl.COLOR_BUFFER_BIT|gl.DEPTH_BUFFER_BIT);gl.enable(gl.DEPTH_TEST);
gl.uniformMatrix4fv(uM,false,viewProj());
if(pred&&gt&&on("show-lines")){var o=3*frame*P;for(var i=0;i<P;i++)for(var k=0;k<3;k++){lines[6*i+k]=pred[o+3*i+k];lines[6*i+3+k]=gt[o+3*i+k];}
gl.bindBuffer(gl.ARRAY_BUFFER,lineBuf);gl.bufferSubData(gl.ARRAY_BUFFER,0,lines);drawSet(lineBuf,0,2*P,gl.LINES,meta.lineColor,1);}
if(gt&&on("show-gt"))drawSet(gtBuf,frame*P,P,gl.POINTS,meta.gtColor,7*dpr);
if(pred&&on("show-pred"))drawSet(predBuf,frame*P,P,gl.POINTS,meta.predColor,7*dpr);}
var drag=null;
canvas.addEventListener("contextmenu",function(e){e.preventDefault();});
canvas.addEventListener("mousedown",function(e){drag={x:e.clientX,y:e.clientY,pan:e.shiftKey||e.button===2};canvas.focus();e.preventDefault();});
window.addEventListener("mouseup",function(){drag=null;});
window.addEventListener("mousemove",function(e){if(!drag)return;var dx=e.clientX-drag.x,dy=e.clientY-drag.y;drag.x=e.clientX;drag.y=e.clientY;
if(drag.pan){var a=axes(),k=cam.dist*2*Math.tan(fov/2)/canvas.clientHeight;for(var i=0;i<3;i++)cam.target[i]+=k*(-dx*a.x[i]+dy*a.y[i]);}
else{cam.yaw-=dx*0.01;cam.pitch=Math.max(-1.55,Math.min(1.55,cam.pitch+dy*0.01));}redraw();});
canvas.addEventListener("wheel",function(e){e.preventDefault();cam.dist*=Math.exp(e.deltaY*(e.deltaMode===1?0.05:0.0015));redraw();},{passive:false});
function tick(t){if(playing&&t-last>=1000/meta.fps){last=t;setFrame(frame+1);}if(dirty){dirty=false;draw();}requestAnimationFrame(tick);}
window.addEventListener("resize",redraw);
reset();setFrame(0);requestAnimationFrame(tick);
})();
"""
