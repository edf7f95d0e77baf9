// Web components of the pages: the summary-bucket bar and the sparkline.

const BUCKETS = ["running", "starting", "queued", "complete", "failed", "lost"];
const SVG = "http://www.w3.org/2000/svg";

// <cv-buckets>: one segment per summary bucket, sized by its allocations, against the
// desired count (an empty track shows what is still missing).
class Buckets extends HTMLElement {
  set value({ summary, count }) {
    const total = BUCKETS.reduce((n, b) => n + (summary[b] || 0), 0);
    const width = Math.max(total, count, 1);
    const parts = [];
    this.replaceChildren();
    for (const bucket of BUCKETS) {
      const n = summary[bucket] || 0;
      if (!n) continue;
      const seg = document.createElement("span");
      seg.className = `seg ${bucket}`;
      seg.style.flexGrow = String(n);
      seg.title = `${bucket}: ${n}`;
      this.append(seg);
      parts.push(`${bucket} ${n}`);
    }
    if (width > total) {
      const rest = document.createElement("span");
      rest.className = "seg missing";
      rest.style.flexGrow = String(width - total);
      rest.title = `not yet there: ${width - total}`;
      this.append(rest);
    }
    this.setAttribute("role", "img");
    this.setAttribute("aria-label", parts.length ? parts.join(", ") : "no allocations");
  }
}

// <cv-sparkline>: a small line of recent values (null = no value that period).
class Sparkline extends HTMLElement {
  set values(values) {
    const w = 80;
    const h = 18;
    const numbers = values.map((v) => (v === null || v === undefined ? 0 : v));
    const max = Math.max(...numbers, 0);
    const min = Math.min(...numbers, 0);
    const span = max - min || 1;
    const step = numbers.length > 1 ? w / (numbers.length - 1) : w;
    const points = numbers
      .map((v, i) => `${(i * step).toFixed(1)},${(h - 1 - ((v - min) / span) * (h - 2)).toFixed(1)}`)
      .join(" ");
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
    svg.setAttribute("width", String(w));
    svg.setAttribute("height", String(h));
    svg.setAttribute("aria-hidden", "true");
    const line = document.createElementNS(SVG, "polyline");
    line.setAttribute("points", numbers.length === 1 ? `0,${h / 2} ${w},${h / 2}` : points);
    svg.append(line);
    this.replaceChildren(svg);
    this.setAttribute("role", "img");
    this.setAttribute("aria-label", `recent periods: ${numbers.join(", ")}`);
  }
}

customElements.define("cv-buckets", Buckets);
customElements.define("cv-sparkline", Sparkline);
