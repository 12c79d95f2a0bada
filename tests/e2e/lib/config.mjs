// Builders for gateway configs (LiteLLM-style objects, written to YAML by the harness).

// A deployment of group `modelName` served by an OpenAI-compatible upstream at apiBase (a
// MockUpstream's apiBase, or http://127.0.0.1:<closed port>/v1 for a dead one).
export function httpDeployment(modelName, apiBase, { provider = 'openai', upstreamModel, ...params } = {}) {
  return {
    model_name: modelName,
    litellm_params: {
      model: `${provider}/${upstreamModel ?? `${modelName}-upstream`}`,
      api_base: apiBase,
      api_key: 'EMPTY',
      ...params,
    },
  };
}

// A deployment answered by the in-process mock provider.
export function mockDeployment(modelName, params = {}) {
  return { model_name: modelName, litellm_params: { model: `mock/${modelName}-inproc`, ...params } };
}

export function deadApiBase(port) { return `http://127.0.0.1:${port}/v1`; }
