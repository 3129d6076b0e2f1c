import type { StatsView } from '#payments';
import type { T } from './i18n.js';

const COLORS = ['#1f6feb', '#2e7d32', '#b26a00', '#6a1b9a', '#00838f', '#c62828', '#5d4037'];
const W = 640;
const H = 240;
const PAD = { l: 56, r: 12, t: 12, b: 36 };

/** "12.34" → 1234: the decimal string's digits as an integer (for bar heights only; labels stay strings). */
const units = (s: string): number => Number(s.replace('.', ''));

interface Series {
  readonly name: string;
  readonly color: string;
  readonly values: number[];
}

function Legend(props: { series: Series[] }) {
  return (
    <div class="legend">
      {props.series.map((s) => (
        <span>
          <svg width="12" height="12" aria-hidden="true">
            <rect width="12" height="12" rx="2" fill={s.color} />
          </svg>{' '}
          {s.name || '—'}
        </span>
      ))}
    </div>
  );
}

function Axis(props: { labels: string[]; max: number; fmt: (v: number) => string }) {
  const plotH = H - PAD.t - PAD.b;
  const step = (W - PAD.l - PAD.r) / Math.max(1, props.labels.length);
  const every = Math.ceil(props.labels.length / 10);
  return (
    <g>
      {[0, 0.5, 1].map((f) => (
        <g>
          <line x1={PAD.l} x2={W - PAD.r} y1={PAD.t + plotH * (1 - f)} y2={PAD.t + plotH * (1 - f)} stroke="#dde3ea" />
          <text x={PAD.l - 6} y={PAD.t + plotH * (1 - f) + 4} text-anchor="end">
            {props.fmt(props.max * f)}
          </text>
        </g>
      ))}
      {props.labels.map((l, i) =>
        i % every === 0 ? (
          <text x={PAD.l + step * (i + 0.5)} y={H - PAD.b + 16} text-anchor="middle">
            {l}
          </text>
        ) : null,
      )}
    </g>
  );
}

function StackedBars(props: { title: string; labels: string[]; series: Series[]; fmt: (v: number) => string }) {
  const totals = props.labels.map((_, i) => props.series.reduce((n, s) => n + (s.values[i] ?? 0), 0));
  const max = Math.max(1, ...totals);
  const plotH = H - PAD.t - PAD.b;
  const step = (W - PAD.l - PAD.r) / Math.max(1, props.labels.length);
  const bw = Math.max(2, step * 0.7);
  return (
    <figure class="card">
      <figcaption>
        <strong>{props.title}</strong>
      </figcaption>
      <svg class="chart" viewBox={`0 0 ${W} ${H}`} role="img" aria-label={props.title}>
        <Axis labels={props.labels} max={max} fmt={props.fmt} />
        {props.labels.map((_, i) => {
          let y = PAD.t + plotH;
          return props.series.map((s) => {
            const h = ((s.values[i] ?? 0) / max) * plotH;
            y -= h;
            return h > 0 ? (
              <rect x={PAD.l + step * i + (step - bw) / 2} y={y} width={bw} height={h} fill={s.color}>
                <title>{`${props.labels[i]} ${s.name}: ${props.fmt(s.values[i] ?? 0)}`}</title>
              </rect>
            ) : null;
          });
        })}
      </svg>
      <Legend series={props.series} />
    </figure>
  );
}

function Lines(props: { title: string; labels: string[]; series: Series[]; max: number; fmt: (v: number) => string }) {
  const plotH = H - PAD.t - PAD.b;
  const step = (W - PAD.l - PAD.r) / Math.max(1, props.labels.length);
  const max = Math.max(1, props.max);
  return (
    <figure class="card">
      <figcaption>
        <strong>{props.title}</strong>
      </figcaption>
      <svg class="chart" viewBox={`0 0 ${W} ${H}`} role="img" aria-label={props.title}>
        <Axis labels={props.labels} max={max} fmt={props.fmt} />
        {props.series.map((s) => (
          <g>
            <polyline
              fill="none"
              stroke={s.color}
              stroke-width="2"
              points={s.values
                .map((v, i) => `${(PAD.l + step * (i + 0.5)).toFixed(1)},${(PAD.t + plotH * (1 - v / max)).toFixed(1)}`)
                .join(' ')}
            />
            {s.values.map((v, i) => (
              <circle cx={PAD.l + step * (i + 0.5)} cy={PAD.t + plotH * (1 - v / max)} r="3" fill={s.color}>
                <title>{`${props.labels[i]} ${s.name}: ${props.fmt(v)}`}</title>
              </circle>
            ))}
          </g>
        ))}
      </svg>
      <Legend series={props.series} />
    </figure>
  );
}

/** Paid amount per bucket by channel, orders created and paid, and the conversion rate: inline SVG. */
export function DailyCharts(props: { stats: StatsView; currency: string; t: T }) {
  const { stats, t } = props;
  const rows = stats.items.filter((r) => r.currency === props.currency);
  const buckets = [...new Set(stats.items.map((r) => r.bucket))].sort();
  const labels = buckets.map((b) => (stats.bucket === 'day' ? b.slice(5, 10) : b.slice(11, 16)));
  const channels = [...new Set(rows.map((r) => r.channel))].sort();
  const at = (b: string, c: string) => rows.find((r) => r.bucket === b && r.channel === c);
  const paidSeries: Series[] = channels.map((c, i) => ({
    name: c,
    color: COLORS[i % COLORS.length] ?? '#1f6feb',
    values: buckets.map((b) => units(at(b, c)?.paidAmount ?? '0')),
  }));
  const sum = (b: string, f: 'created' | 'paid') =>
    stats.items.filter((r) => r.bucket === b).reduce((n, r) => n + r[f], 0);
  const created = buckets.map((b) => sum(b, 'created'));
  const paid = buckets.map((b) => sum(b, 'paid'));
  const rate = buckets.map((_, i) => ((paid[i] ?? 0) * 100) / Math.max(1, created[i] ?? 0));
  const exp = props.currency === 'JPY' || props.currency === 'KRW' ? 0 : 2;
  const money = (v: number) => (exp === 0 ? String(Math.round(v)) : (Math.round(v) / 100).toFixed(0));
  return (
    <div class="charts">
      <StackedBars
        title={`${t('Paid amount per day')} (${props.currency})`}
        labels={labels}
        series={paidSeries}
        fmt={money}
      />
      <Lines
        title={t('Orders per day')}
        labels={labels}
        max={Math.max(...created, 1)}
        fmt={(v) => String(Math.round(v))}
        series={[
          { name: t('created'), color: '#5d6b7e', values: created },
          { name: t('paid'), color: '#2e7d32', values: paid },
        ]}
      />
      <Lines
        title={t('Conversion rate')}
        labels={labels}
        max={100}
        fmt={(v) => `${Math.round(v)}%`}
        series={[{ name: t('Conversion rate'), color: '#1f6feb', values: rate }]}
      />
    </div>
  );
}
