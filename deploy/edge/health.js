// The edge's GET /health: readiness of every service behind it, asked in parallel through internal
// subrequests (/_ready/<service>, generated from the route table). 200 when all are ready, else 503.
async function health(r) {
  const services = r.variables.edge_services.split(",").filter((s) => s);
  const replies = await Promise.all(
    services.map((s) =>
      r.subrequest("/_ready/" + s).then((reply) => reply.status === 200, () => false)
    )
  );
  const checks = {};
  services.forEach((s, i) => { checks[s] = replies[i]; });
  const ok = replies.every((x) => x);
  r.headersOut["Content-Type"] = "application/json";
  r.return(ok ? 200 : 503, JSON.stringify({ status: ok ? "OK" : "FAIL", service: "edge", checks: checks }));
}

export default { health };
