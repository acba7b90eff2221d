"""A self-contained interactive HTML timeline (inline SVG, CSS and JavaScript; no network).

:func:`render_timeline` draws rows of coloured segments (one row per vCPU: its state over
time), a thin band of overlaid labelled segments under each row (the guest task running) and
marked intervals above it (preemptions); every element has a hover tooltip.  The mouse wheel
zooms, dragging pans, double-click resets.  :func:`vm_timeline_html` builds those rows from a
:class:`tracewatch.vm.VmReport`, plus one row per critical path given
(:class:`tracewatch.critical.SystemPath`: segments coloured by resource, i.e. machine and
task, the hover text naming the task, its state and the host thread holding the CPU);
:func:`path_timeline_html` draws a path alone.

The page embeds its data as JSON and draws an SVG: each row is a ``<g class="tl-row">`` with
``data-label`` (and ``data-vm``/``data-vcpu`` for vCPU rows, ``data-path`` = the TID for a
path row), so tests can count rows in the DOM.  Imports :mod:`tracewatch.vm` and
:mod:`tracewatch.critical` (never the CLI).
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..critical.cross import SystemPath
from ..vm import HALTED, IDLE, IN_HYPERVISOR, PREEMPTED, RUNNING, VmReport, culprit_text
from ..vm.vcpu import BASE_MASK, state_name

__all__ = ["TimelineRow", "render_timeline", "vm_timeline_html", "STATE_COLORS", "path_rows",
           "path_timeline_html"]

#: colours of the resources of a critical path (cycled)
PATH_PALETTE = ["#1f77b4", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
                "#bcbd22", "#7f7f7f", "#393b79", "#637939", "#843c39", "#7b4173"]

#: state class -> colour (the legend of vCPU rows)
STATE_COLORS: dict[str, str] = {
    "UNKNOWN": "#eeeeee", "IDLE": "#c8d3dc", "RUNNING": "#2e9e4f",
    "IN_HYPERVISOR": "#f29b1d", "PREEMPTED": "#d7263d", "HALTED": "#7b8fa6",
}


@dataclass
class TimelineRow:
    """One row: ``segments`` (start, end, colour class, tooltip), ``overlay`` (start, end,
    label, tooltip) drawn as a thin band below, ``marks`` (start, end, tooltip) above.
    Times are ns, absolute; ``attrs`` become ``data-*`` attributes of the row."""

    label: str
    segments: list[tuple[int, int, str, str]] = field(default_factory=list)
    overlay: list[tuple[int, int, str, str]] = field(default_factory=list)
    marks: list[tuple[int, int, str]] = field(default_factory=list)
    attrs: dict[str, str] = field(default_factory=dict)


_CSS = """
body{font:13px system-ui,sans-serif;margin:12px;color:#222}
h1{font-size:17px;margin:0 0 6px}
#legend span{display:inline-block;margin-right:14px}
#legend i{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:-2px;
border:1px solid #999}
#tl{border:1px solid #bbb;user-select:none;cursor:grab;background:#fff}
#tip{position:fixed;pointer-events:none;background:#222;color:#fff;padding:4px 7px;
border-radius:4px;font-size:12px;white-space:pre;display:none;z-index:9}
.notes{color:#555;font-size:12px}
"""

_JS = r"""
(function(){
const D=JSON.parse(document.getElementById('tl-data').textContent);
const svgNS='http://www.w3.org/2000/svg';
const svg=document.getElementById('tl');const tip=document.getElementById('tip');
const LW=170, W=Math.max(600,(window.innerWidth||1200)-40), PW=W-LW-10;
const RH=22, OH=8, MH=6, GAP=14, TOP=26, ROWH=MH+RH+OH+GAP;
let v0=0, v1=Math.max(1,D.t1-D.t0);
svg.setAttribute('width',W);svg.setAttribute('height',TOP+D.rows.length*ROWH+10);
function el(n,a,p){const e=document.createElementNS(svgNS,n);for(const k in a)e.setAttribute(k,a[k]);
 if(p)p.appendChild(e);return e;}
function x(t){return LW+(t-v0)/(v1-v0)*PW;}
function fmt(ns){if(Math.abs(ns)>=1e9)return (ns/1e9).toFixed(6)+' s';
 if(Math.abs(ns)>=1e6)return (ns/1e6).toFixed(3)+' ms';if(Math.abs(ns)>=1e3)return (ns/1e3).toFixed(3)+' us';
 return ns+' ns';}
function hue(s){let h=0;for(const c of String(s))h=(h*31+c.charCodeAt(0))%360;return 'hsl('+h+',55%,62%)';}
function tipOn(e,text){e.addEventListener('mousemove',ev=>{tip.style.display='block';
 tip.textContent=text;tip.style.left=(ev.clientX+12)+'px';tip.style.top=(ev.clientY+12)+'px';});
 e.addEventListener('mouseleave',()=>{tip.style.display='none';});}
function span(s,e){return fmt(s)+' -> '+fmt(e)+'  ('+fmt(e-s)+')';}
function draw(){
 while(svg.firstChild)svg.removeChild(svg.firstChild);
 const ax=el('g',{'class':'tl-axis'},svg);
 for(let k=0;k<=8;k++){const t=v0+(v1-v0)*k/8;const xx=x(t);
  el('line',{x1:xx,x2:xx,y1:TOP-6,y2:TOP+D.rows.length*ROWH,stroke:'#eee'},ax);
  const tx=el('text',{x:xx,y:TOP-10,'font-size':10,'text-anchor':'middle',fill:'#666'},ax);
  tx.textContent=fmt(t);}
 D.rows.forEach((r,i)=>{
  const y=TOP+i*ROWH;const g=el('g',{'class':'tl-row','data-label':r.label},svg);
  for(const k in r.attrs)g.setAttribute('data-'+k,r.attrs[k]);
  const lb=el('text',{x:4,y:y+MH+RH-6,'font-size':12},g);lb.textContent=r.label;
  el('rect',{x:LW,y:y+MH,width:PW,height:RH,fill:'#fafafa',stroke:'#ddd'},g);
  for(const s of r.seg){if(s[1]<v0||s[0]>v1)continue;
   const a=Math.max(x(s[0]),LW),b=Math.min(x(s[1]),LW+PW);if(b-a<0.2)continue;
   const e=el('rect',{x:a,y:y+MH,width:b-a,height:RH,fill:D.colors[s[2]]||'#999','class':'tl-seg st-'+s[2]},g);
   tipOn(e,r.label+'\n'+s[3]+'\n'+span(s[0],s[1]));}
  for(const s of r.ov){if(s[1]<v0||s[0]>v1)continue;
   const a=Math.max(x(s[0]),LW),b=Math.min(x(s[1]),LW+PW);if(b-a<0.2)continue;
   const e=el('rect',{x:a,y:y+MH+RH+1,width:b-a,height:OH,fill:hue(s[2]),'class':'tl-task'},g);
   tipOn(e,s[3]+'\n'+span(s[0],s[1]));
   if(b-a>40){const t=el('text',{x:a+2,y:y+MH+RH+OH,'font-size':8,fill:'#111'},g);t.textContent=s[2];}}
  for(const s of r.mk){if(s[1]<v0||s[0]>v1)continue;
   const a=Math.max(x(s[0]),LW),b=Math.min(x(s[1]),LW+PW);
   const e=el('rect',{x:a,y:y,width:Math.max(b-a,1.5),height:MH-1,fill:'#d7263d','class':'tl-mark'},g);
   tipOn(e,s[2]+'\n'+span(s[0],s[1]));}
 });}
function tAt(px){return v0+(px-LW)/PW*(v1-v0);}
svg.addEventListener('wheel',ev=>{ev.preventDefault();const r=svg.getBoundingClientRect();
 const t=tAt(ev.clientX-r.left);const f=ev.deltaY<0?0.8:1.25;
 v0=t-(t-v0)*f;v1=t+(v1-t)*f;if(v1-v0<10){v1=v0+10;}draw();},{passive:false});
let drag=null;svg.addEventListener('mousedown',ev=>{drag=[ev.clientX,v0,v1];});
window.addEventListener('mouseup',()=>{drag=null;});
window.addEventListener('mousemove',ev=>{if(!drag)return;const dt=(ev.clientX-drag[0])/PW*(drag[2]-drag[1]);
 v0=drag[1]-dt;v1=drag[2]-dt;draw();});
svg.addEventListener('dblclick',()=>{v0=0;v1=Math.max(1,D.t1-D.t0);draw();});
draw();
})();
"""


def render_timeline(title: str, rows: Sequence[TimelineRow], start: int, end: int,
                    colors: dict[str, str] | None = None, notes: Sequence[str] = (),
                    labels: dict[str, str] | None = None) -> str:
    """The HTML page (a string) of ``rows`` over [start, end] (ns); ``labels`` names colour
    classes in the legend (default: the class itself)."""
    cols = dict(colors or STATE_COLORS)
    labels = labels or {}
    data: dict[str, Any] = {
        "t0": 0, "t1": end - start, "colors": cols,  # times relative to ``start``
        "rows": [{"label": r.label, "attrs": r.attrs,
                  "seg": [[s - start, e - start, c, tip] for s, e, c, tip in r.segments],
                  "ov": [[s - start, e - start, lab, tip] for s, e, lab, tip in r.overlay],
                  "mk": [[s - start, e - start, tip] for s, e, tip in r.marks]}
                 for r in rows]}
    blob = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    legend = "".join(f'<span><i style="background:{c}"></i>{html.escape(labels.get(k, k))}'
                     '</span>' for k, c in cols.items())
    legend += ('<span><i style="background:#d7263d;height:5px"></i>preemption (hover: '
               'culprit)</span><span>thin band: guest task</span>')
    note_html = "".join(f"<div>{html.escape(n)}</div>" for n in notes)
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}"
            f"</title><style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>"
            f"<div id=\"legend\">{legend}</div><div class=\"notes\">time origin {start} ns; "
            f"wheel: zoom, drag: pan, double-click: reset{note_html}</div>"
            f"<svg id=\"tl\" xmlns=\"http://www.w3.org/2000/svg\"></svg><div id=\"tip\"></div>"
            f"<script type=\"application/json\" id=\"tl-data\">{blob}</script>"
            f"<script>{_JS}</script></body></html>\n")


def _state_class(bits: int) -> str:
    if bits & PREEMPTED:
        return "PREEMPTED"
    if bits & HALTED:
        return "HALTED"
    if bits & IN_HYPERVISOR:
        return "IN_HYPERVISOR"
    base = bits & BASE_MASK
    return "RUNNING" if base == RUNNING else "IDLE" if base == IDLE else "UNKNOWN"


def path_rows(paths: Sequence[SystemPath]) -> tuple[list[TimelineRow], dict[str, str],
                                                     dict[str, str]]:
    """One row per critical path (segments coloured by resource: machine and task), with
    the colour classes (``cp-N``) and their legend labels."""
    colors: dict[str, str] = {}
    labels: dict[str, str] = {}
    cls: dict[tuple[str, str, int], str] = {}
    rows = []
    for p in paths:
        segs: list[tuple[int, int, str, str]] = []
        ov: list[tuple[int, int, str, str]] = []
        for r in p.intervals.rows():
            where = f"VM {r['vm']}" if r["vm"] else f"Host {r['machine']}"
            key = (where, r["comm"], int(r["tid"]))
            c = cls.get(key)
            if c is None:
                c = cls[key] = f"cp-{len(cls)}"
                colors[c] = PATH_PALETTE[(len(cls) - 1) % len(PATH_PALETTE)]
                labels[c] = f"path: {where} {r['comm']} {r['tid']}"
            held = f" (host thread {r['host_tid']} on the CPU)" if r["host_tid"] >= 0 else ""
            segs.append((int(r["start"]), int(r["end"]), c,
                         f"{where}: {r['comm']} {r['tid']} {r['state']}{held}"))
            if r["state"] != "RUNNING":
                ov.append((int(r["start"]), int(r["end"]), r["state"], r["state"]))
        label = f"path {p.comm} {p.tid}"
        rows.append(TimelineRow(label, segs, ov, [],
                                {"path": str(p.tid), "machine": p.vm or p.machine}))
    return rows, colors, labels


def path_timeline_html(p: SystemPath, title: str | None = None) -> str:
    """A page with the critical path ``p`` alone."""
    rows, colors, labels = path_rows([p])
    return render_timeline(title or f"tracewatch critical-path: {p.comm} {p.tid}", rows,
                           p.begin, max(p.end, p.begin + 1), colors, p.notes, labels)


def vm_timeline_html(report: VmReport, title: str = "tracewatch vm: vCPU timeline",
                     paths: Sequence[SystemPath] = ()) -> str:
    """One row per vCPU of every VM: state, guest task band, preemptions with culprits; then
    one row per critical path of ``paths``."""
    st = report.states
    rows: list[TimelineRow] = []
    for v in st.vcpus:
        iv = v.intervals
        segs: list[tuple[int, int, str, str]] = []
        ov: list[tuple[int, int, str, str]] = []
        for s, e, bits, g in zip(iv["start"].tolist(), iv["end"].tolist(),
                                 iv["state"].tolist(), iv["guest_tid"].tolist(), strict=True):
            segs.append((s, e, _state_class(bits), state_name(bits)))
            if g > 0:
                comm = v.guest_comms.get(g, "")
                lab = f"{comm} {g}"
                if ov and ov[-1][2] == lab and ov[-1][1] == s:
                    ov[-1] = (ov[-1][0], e, lab, ov[-1][3])
                else:
                    ov.append((s, e, lab, f"guest task {comm} ({g})"))
        marks = [(int(r["start"]), int(r["end"]),
                  f"preempted on CPU {r['cpu']} by {culprit_text(r)}")
                 for r in v.preemptions.rows()]
        rows.append(TimelineRow(f"{v.vm} vCPU {v.vcpu}", segs, ov, marks,
                                {"vm": v.vm, "vcpu": str(v.vcpu), "tid": str(v.tid)}))
    prow, pcol, plab = path_rows(paths)
    return render_timeline(title, rows + prow, st.start, max(st.end, st.start + 1),
                           {**STATE_COLORS, **pcol}, report.notes, plab)
