// `kwaainet client generate`: generate through a Petals swarm. The blocks run on the servers
// found in the DHT under --dht-prefix; embeddings, final norm, LM head and sampling run here on
// the model's ends (--model gives those tensors and the tokenizer; no block is loaded).
#include <spdlog/spdlog.h>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "cli/client/client.hpp"
#include "cli/commands.hpp"
#include "cli/generation_io.hpp"
#include "engine/core/backend.hpp"
#include "engine/model/model_source.hpp"
#include "engine/model/tokenizer.hpp"

namespace kwaai::cli {
namespace {

struct ClientGenerateConfig {
  std::vector<std::string> initial_peers;
  std::string dht_prefix;
  std::string model;
  std::string prompt;
  std::string prompt_ids;
  std::int64_t max_new_tokens = 32;
  engine::llama::SamplingOptions sampling;
  std::string device;
  std::string active_adapter;
  int max_retries = 4;
  double step_timeout_s = 180;
  bool ignore_eos = false;
  bool json = false;
};

std::string route_text(const std::vector<client::RouteHop>& route) {
  std::string s;
  for (const auto& h : route)
    s += "\n  blocks [" + std::to_string(h.start) + ":" + std::to_string(h.end) + ") served by " +
         h.peer;
  return s;
}

void run_client_generate(const ClientGenerateConfig& c, const GlobalOptions& global) {
  using namespace kwaai::engine;
  const std::string device = !c.device.empty()                 ? c.device
                             : !global.device_override.empty() ? global.device_override
                                                               : "cpu";
  auto src = open_model(c.model);
  Prompt p = resolve_prompt(c.model, *src, c.prompt, c.prompt_ids, "client generate");
  const std::optional<Tokenizer>& tok = p.tokenizer;
  const std::vector<std::int32_t>& prompt = p.ids;
  auto be = make_backend(device);
  llama::ModelEnds ends(*be, *src);

  client::ClientConfig cfg;
  cfg.initial_peers = c.initial_peers;
  cfg.dht_prefix = c.dht_prefix;
  cfg.max_retries = c.max_retries;
  if (!c.active_adapter.empty()) cfg.active_adapter = c.active_adapter;
  cfg.timeouts.step = std::chrono::milliseconds(static_cast<std::int64_t>(c.step_timeout_s * 1000));
  client::PetalsClient pc(ends, cfg);

  client::GenerateOptions opt;
  opt.prompt = prompt;
  opt.max_new_tokens = c.max_new_tokens;
  opt.sampling = c.sampling;
  opt.stop_tokens = stop_tokens(*src, tok, c.ignore_eos);
  // Text (or ids) stream to stdout, or to stderr under --json; the route always to stderr.
  std::FILE* stream = c.json ? stderr : stdout;
  TokenPrinter printer(stream, tok ? &*tok : nullptr);
  opt.on_token = [&](std::int32_t id) { printer(id); };
  bool first_route = true;
  opt.on_route = [&](const std::vector<client::RouteHop>& r) {
    std::fprintf(stderr, "%s%s\n",
                 first_route ? "route:" : "\nroute changed:", route_text(r).c_str());
    std::fflush(stderr);
    first_route = false;
  };
  const client::GenerateResult res = pc.generate(opt);
  printer.finish();
  spdlog::info(
      "client: {} new tokens, {:.1f} tokens/s (setup {:.2f} s, prefill {:.3f} s){}", res.ids.size(),
      res.tokens_per_s, res.setup_s, res.prefill_s,
      res.failures.empty() ? "" : ", " + std::to_string(res.failures.size()) + " failover(s)");
  if (c.json) {
    nlohmann::json j;
    j["ids"] = res.ids;
    j["text"] = tok ? tok->decode(res.ids, /*skip_special=*/true) : std::string();
    j["prompt_tokens"] = prompt.size();
    j["route"] = nlohmann::json::array();
    for (const auto& h : res.route)
      j["route"].push_back({{"peer", h.peer}, {"start", h.start}, {"end", h.end}});
    j["tokens_per_s"] = res.tokens_per_s;
    j["setup_s"] = res.setup_s;
    j["prefill_s"] = res.prefill_s;
    j["failures"] = res.failures;
    j["wire_dtype"] = res.wire_dtype;
    j["device"] = be->name();
    std::cout << j.dump() << std::endl;
  }
}

}  // namespace

void register_client(CLI::App& app, GlobalOptions& global) {
  CLI::App* client = app.add_subcommand("client", "Use a Petals swarm as a client");
  client->require_subcommand(1);
  auto cfg = std::make_shared<ClientGenerateConfig>();
  CLI::App* sub = client->add_subcommand(
      "generate", "Generate through the servers of a swarm (blocks remote, ends local)");
  sub->add_option("--initial-peers", cfg->initial_peers, "/ip4/../tcp/N/p2p/<id> ...")->required();
  sub->add_option("--dht-prefix", cfg->dht_prefix, "the model's DHT prefix (e.g. stories260K-hf)")
      ->required();
  sub->add_option("--model", cfg->model,
                  "HF folder or .gguf with the embeddings, final norm, LM head and tokenizer")
      ->required();
  sub->add_option("--prompt", cfg->prompt, "prompt text (needs the model's tokenizer)");
  sub->add_option("--prompt-ids", cfg->prompt_ids, "prompt as comma-separated token ids");
  sub->add_option("--max-new-tokens", cfg->max_new_tokens, "tokens to generate")
      ->capture_default_str()
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{1} << 20));
  add_sampling_flags(sub, cfg->sampling);
  sub->add_option("--device", cfg->device, "device for the model's ends (default: cpu)");
  sub->add_option("--active-adapter", cfg->active_adapter,
                  "only servers with this adapter; it is requested in each session");
  sub->add_option("--max-retries", cfg->max_retries, "failed server attempts before giving up")
      ->capture_default_str()
      ->check(CLI::Range(0, 1000));
  sub->add_option("--step-timeout", cfg->step_timeout_s, "seconds to wait for one step's answer")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  sub->add_flag("--ignore-eos", cfg->ignore_eos, "do not stop at the end-of-sequence token");
  sub->add_flag("--json", cfg->json, "print a JSON summary as the last stdout line");
  sub->callback([cfg, &global] { run_client_generate(*cfg, global); });
}

}  // namespace kwaai::cli
