#include "load.hpp"

#include <dirent.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "e2e/fixtures.hpp"

namespace flare::bench {

std::string event_body(const std::string& id, std::size_t n) {
  std::string pad(2000 + (n * 7919) % 2000, 'x');
  for (std::size_t i = 0; i < pad.size(); i += 7) pad[i] = static_cast<char>('a' + (n + i) % 26);
  return R"({"id":")" + id + R"(","object":"event","type":"invoice.paid","data":{"object":)" +
         R"({"amount":1200,"description":")" + pad + R"("}}})";
}

bool post(test::HttpClient& client, const std::string& source, const std::string& id,
          std::size_t n) {
  std::string body = event_body(id, n);
  int status =
      client.request("POST", "/webhooks/" + source, test::stripe_headers(body), body).status;
  return status == 202 || status == 200;
}

std::string stripe_source(const std::string& name, std::uint16_t port) {
  std::string out = "  - name: " + name + "\n    provider: stripe\n    project: shop\n" +
                    "    secrets: [\"" + test::kStripeSecret + "\"]\n";
  if (port == 0) return out;
  return out + "    routes:\n      - { name: r, url: \"http://127.0.0.1:" + std::to_string(port) +
         "/\", secret: \"" + test::kDestinationSecret + "\", timeout_ms: 10000 }\n";
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[static_cast<std::size_t>(p * static_cast<double>(v.size() - 1))];
}

std::int64_t tree_ticks(pid_t root) {
  std::int64_t total = 0;
  DIR* proc = opendir("/proc");
  if (proc == nullptr) return 0;
  while (dirent* entry = readdir(proc)) {
    if (entry->d_name[0] < '0' || entry->d_name[0] > '9') continue;
    std::ifstream file(std::string("/proc/") + entry->d_name + "/stat");
    std::string line;
    if (!std::getline(file, line)) continue;
    // After the command's closing parenthesis: state, ppid, then utime, stime, cutime and
    // cstime as the 12th to 15th fields.
    std::istringstream rest(line.substr(line.rfind(')') + 2));
    std::vector<std::string> f(15);
    for (auto& v : f) rest >> v;
    pid_t pid = std::stoi(line);
    if (pid == root) {
      total += std::stoll(f[11]) + std::stoll(f[12]) + std::stoll(f[13]) + std::stoll(f[14]);
    } else if (std::stoi(f[1]) == root) {
      total += std::stoll(f[11]) + std::stoll(f[12]);
    }
  }
  closedir(proc);
  return total;
}

std::int64_t machine_ticks() {
  std::ifstream stat("/proc/stat");
  std::string cpu;
  std::int64_t user, nice, system, idle, iowait, irq, softirq, steal;
  stat >> cpu >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal;
  return user + nice + system + irq + softirq + steal;
}

}  // namespace flare::bench
