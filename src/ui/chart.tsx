import { useEffect, useRef } from 'preact/hooks'
import uPlot from 'uplot'
import 'uplot/dist/uPlot.min.css'

export interface Series {
  readonly label: string
  readonly values: readonly number[]
  /** A CSS custom property holding the line colour, so light and dark themes both read. */
  readonly colorVar: string
}

function cssVar(name: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || '#888'
}

/** A time chart (uPlot: canvas, ~50 KB unpacked, no dependencies) sized to its container. */
export function Chart({ title, times, series, unit }: { title: string; times: readonly number[]; series: readonly Series[]; unit: string }): preact.JSX.Element {
  const box = useRef<HTMLDivElement>(null)
  const plot = useRef<uPlot | null>(null)
  const data = (): uPlot.AlignedData => [times.map((t) => t / 1000), ...series.map((s) => [...s.values])]

  useEffect(() => {
    const el = box.current
    if (el === null) return
    const axis = { stroke: cssVar('--fg-muted'), grid: { stroke: cssVar('--border') }, ticks: { stroke: cssVar('--border') } }
    const opts: uPlot.Options = {
      width: Math.max(200, el.clientWidth),
      height: 180,
      legend: { show: true },
      cursor: { drag: { x: false, y: false } },
      scales: { y: { range: (_u, _min, max) => [0, Math.max(1, max * 1.1)] } },
      axes: [axis, { ...axis, size: 60, label: unit }],
      series: [{}, ...series.map((s) => ({ label: s.label, stroke: cssVar(s.colorVar), width: 2, points: { show: false } }))],
    }
    const u = new uPlot(opts, data(), el)
    plot.current = u
    const resize = new ResizeObserver(() => u.setSize({ width: Math.max(200, el.clientWidth), height: 180 }))
    resize.observe(el)
    return () => {
      resize.disconnect()
      u.destroy()
      plot.current = null
    }
  }, [series.length])

  useEffect(() => {
    plot.current?.setData(data())
  }, [times, series])

  const last = series.map((s) => `${s.label}: ${s.values[s.values.length - 1] ?? 0} ${unit}`).join(', ')
  return (
    <figure class="chart">
      <figcaption>{title}</figcaption>
      <div ref={box} role="img" aria-label={`${title}, last 15 minutes; now ${last}`} />
    </figure>
  )
}
