// Grafana dashboards as test input: their PromQL expressions, with variables expanded.

// Every `expr` string anywhere in the dashboard JSON, with where it was found.
export function dashboardExprs(node, where = '$', out = []) {
  if (Array.isArray(node)) {
    node.forEach((v, i) => dashboardExprs(v, `${where}[${i}]`, out));
  } else if (node && typeof node === 'object') {
    const title = typeof node.title === 'string' ? node.title : null;
    for (const [k, v] of Object.entries(node)) {
      const here = title ? `${where}("${title}").${k}` : `${where}.${k}`;
      if (k === 'expr' && typeof v === 'string') out.push({ expr: v, where: here });
      else dashboardExprs(v, here, out);
    }
  }
  return out;
}

// Grafana's built-in interval variables, as Grafana would expand them for a 1 s scrape interval
// over a short time range (the dashboard's own rates use [2m]).
export function substituteGrafanaVariables(expr, variables = {}) {
  const builtins = { __rate_interval: '2m', __interval: '1m', __range: '2m', __interval_ms: '60000',
    __range_s: '120', __range_ms: '120000' };
  let out = expr;
  for (const [name, value] of Object.entries({ ...builtins, ...variables })) {
    out = out.replaceAll(`\${${name}}`, value).replace(new RegExp(`\\$${name}\\b`, 'g'), value);
  }
  return out;
}

