#!/usr/bin/env node
// Test-only tool: run one Pine Script on our own bars with PineTS and print what it computed.
//
// PineTS is AGPL-3.0: this runner lives under tools/, is installed only for tests and
// verification (`npm ci --prefix tools/pinets-runner`), and is never bundled with, imported by
// or served from the aio_ray package. aio_ray/pine/verify.py starts it as a subprocess.
//
// Usage: node run.mjs REQUEST.json      (one run, result written to REQUEST.out)
//        node run.mjs --serve           (many runs: NDJSON requests on stdin, see serve())
//
// REQUEST (JSON):
//   script     Pine source (string)
//   bars       path of a little-endian float64 file: 6 columns of n values, column after
//              column: open time (UTC ms), open, high, low, close, volume
//   n          number of bars
//   timeframe  PineTS timeframe key ("1", "15", "60", "240", "D")
//   bar_ms     bar length in ms (close time = open time + bar_ms)
//   symbol     e.g. "EURUSD" (6 letters: base + quote currency)
//   mintick    price tick, e.g. 0.00001
//   inputs     {"Input title": value} overrides (optional)
//   alert_mode "all" (default: alerts on every bar, for backtests) or "realtime" (last bar)
//   out        path of the JSON result to write
//
// RESULT (JSON): {ok, n, plots: {title: [value|null]}, closed_trades: [...], open_trades:
// [...], netprofit, alerts, warnings, timings_ms: {load, run}, rss_mb}; on failure {ok: false, error,
// stage}. NaN/na values are written as null.

import { readFileSync, writeFileSync } from 'node:fs';
import { PineTS, Indicator, BaseProvider } from 'pinets';

class LocalBarsProvider extends BaseProvider {
    constructor(klines, timeframe, symbolInfo) {
        super({ requiresApiKey: false, providerName: 'Local' });
        this.klines = klines;
        this.timeframe = timeframe;
        this.symbolInfo = symbolInfo;
    }

    getSupportedTimeframes() {
        return new Set([this.timeframe]);
    }

    async _getMarketDataNative(_tickerId, timeframe, _limit, _sDate, _eDate) {
        if (timeframe !== this.timeframe) {
            throw new Error(`LocalBarsProvider holds ${this.timeframe} bars, not ${timeframe}`);
        }
        return this.klines;
    }

    async getSymbolInfo(_tickerId) {
        return this.symbolInfo;
    }
}

function fxSymbolInfo(symbol, mintick) {
    const base = symbol.slice(0, 3);
    const quote = symbol.slice(3, 6);
    const pricescale = Math.round(1 / mintick);
    return {
        current_contract: '',
        description: `${base}/${quote}`,
        isin: '',
        main_tickerid: `LOCAL:${symbol}`,
        prefix: 'LOCAL',
        root: symbol,
        ticker: symbol,
        tickerid: `LOCAL:${symbol}`,
        type: 'forex',
        basecurrency: base,
        country: '',
        currency: quote,
        timezone: 'UTC',
        employees: 0,
        industry: '',
        sector: '',
        shareholders: 0,
        shares_outstanding_float: 0,
        shares_outstanding_total: 0,
        expiration_date: 0,
        session: '24x7',
        volumetype: 'base',
        mincontract: 1,
        minmove: 1,
        mintick,
        pointvalue: 1,
        pricescale,
        recommendations_buy: 0,
        recommendations_buy_strong: 0,
        recommendations_date: 0,
        recommendations_hold: 0,
        recommendations_sell: 0,
        recommendations_sell_strong: 0,
        recommendations_total: 0,
        target_price_average: 0,
        target_price_date: 0,
        target_price_estimates: 0,
        target_price_high: 0,
        target_price_low: 0,
        target_price_median: 0,
    };
}

function readBars(path, n, barMs) {
    const buf = readFileSync(path);
    if (buf.length !== n * 6 * 8) {
        throw new Error(`${path}: expected ${n * 6 * 8} bytes (6 x ${n} float64), got ${buf.length}`);
    }
    const a = new Float64Array(buf.buffer, buf.byteOffset, n * 6);
    const klines = new Array(n);
    for (let i = 0; i < n; i++) {
        const t = a[i];
        klines[i] = {
            openTime: t,
            open: a[n + i],
            high: a[2 * n + i],
            low: a[3 * n + i],
            close: a[4 * n + i],
            volume: a[5 * n + i],
            closeTime: t + barMs,
        };
    }
    return klines;
}

const num = (v) => (typeof v === 'number' && Number.isFinite(v) ? v : null);

function plotValues(plot, n) {
    const out = new Array(n).fill(null);
    const data = plot && plot.data ? plot.data : [];
    for (let i = 0; i < data.length && i < n; i++) {
        const v = data[i] ? data[i].value : null;
        out[i] = typeof v === 'boolean' ? (v ? 1 : 0) : num(v);
    }
    return out;
}

function trade(t) {
    return {
        entry_id: t.entry_id ?? null,
        exit_id: t.exit_id ?? null,
        entry_bar: t.entry_bar_index ?? null,
        exit_bar: t.exit_bar_index ?? null,
        entry_price: num(t.entry_price),
        exit_price: num(t.exit_price),
        size: num(t.size),
        profit: num(t.profit),
        commission: num(t.commission),
    };
}

async function runOne(req) {
    const result = { ok: false, stage: 'load' };
    try {
        const t0 = performance.now();
        const klines = readBars(req.bars, req.n, req.bar_ms);
        const provider = new LocalBarsProvider(klines, req.timeframe, fxSymbolInfo(req.symbol, req.mintick));
        const first = klines.length ? klines[0].openTime : 0;
        const last = klines.length ? klines[klines.length - 1].openTime : 0;
        const pine = new PineTS(provider, req.symbol, req.timeframe, req.n, first, last);
        pine.setAlertMode(req.alert_mode === 'realtime' ? 'realtime' : 'all');
        await pine.ready();
        const t1 = performance.now();
        result.stage = 'run';
        const ind = new Indicator(req.script, req.inputs || {});
        const ctx = await pine.run(ind);
        const t2 = performance.now();
        const plots = {};
        for (const [title, plot] of Object.entries(ctx.plots || {})) {
            plots[title] = plotValues(plot, req.n);
        }
        const s = ctx.strategy;
        Object.assign(result, {
            ok: true,
            stage: 'done',
            n: req.n,
            plots,
            closed_trades: s ? s.closedtrades.map(trade) : [],
            open_trades: s ? s.opentrades.map(trade) : [],
            netprofit: s ? num(s.netprofit) : null,
            alerts: (ctx.alerts || []).length,
            warnings: (ctx.warnings || []).slice(0, 20).map((w) => `${w.method || ''}: ${w.message} (bar ${w.bar})`),
            timings_ms: { load: t1 - t0, run: t2 - t1 },
            rss_mb: process.memoryUsage().rss / 2 ** 20,
        });
    } catch (err) {
        result.ok = false;
        result.error = String(err && err.stack ? err.stack : err);
    }
    return result;
}

// Server mode: one request (JSON, as above, without `out`, with an optional `id`) per stdin
// line; one result line per request on stdout, prefixed with RESULT_PREFIX (anything else a
// script prints is not a result). Requests run one after another; EOF ends the process.
const RESULT_PREFIX = '@@aio-result ';

async function serve() {
    const { createInterface } = await import('node:readline');
    const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
    process.stdout.write(RESULT_PREFIX + JSON.stringify({ ready: true, rss_mb: process.memoryUsage().rss / 2 ** 20 }) + '\n');
    for await (const line of rl) {
        if (!line.trim()) continue;
        let req;
        let result;
        try {
            req = JSON.parse(line);
            result = await runOne(req);
        } catch (err) {
            result = { ok: false, stage: 'request', error: String(err && err.stack ? err.stack : err) };
        }
        result.id = req ? req.id ?? null : null;
        process.stdout.write(RESULT_PREFIX + JSON.stringify(result) + '\n');
    }
}

async function main() {
    const reqPath = process.argv[2];
    if (reqPath === '--serve') return serve();
    if (!reqPath) throw new Error('usage: node run.mjs REQUEST.json | node run.mjs --serve');
    const req = JSON.parse(readFileSync(reqPath, 'utf8'));
    writeFileSync(req.out, JSON.stringify(await runOne(req)));
}

main().catch((err) => {
    process.stderr.write(String(err && err.stack ? err.stack : err) + '\n');
    process.exit(2);
});
