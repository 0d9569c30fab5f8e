// The report is self-contained and draws every chart: checked in the file and in a real
// browser (headless Chromium), which is skipped with a message where Chromium is absent.
#include "test_support.hpp"
#include "test_files.hpp"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include <opencv2/imgcodecs.hpp>

#include "config/config.hpp"
#include "write/report.hpp"
#include "study/run.hpp"
#include "write/svg_chart.hpp"

using namespace kgain::core;
namespace fs = std::filesystem;

using kgain::test::slurp;

namespace {
std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto pos = text.find(what); pos != std::string::npos; pos = text.find(what, pos + 1)) ++n;
  return n;
}

// A small real run, shared by the tests of this file: made once per build (test_files.hpp).
const std::string& run_dir() {
  static const std::string dir =
      kgain::test::made_once_per_build(
          "report-run",
          [](const fs::path& root) {
            fs::create_directories(root);
            std::ofstream(root / "study.toml")
                << "[dataset]\nplugin = \"manifest\"\nroot = \"" << kgain::test::data_dir()
                << "/lc25000-lung-mini\"\nlimit_per_class = 40\n[backbone]\nplugin = \"torchscript\"\nfile = \""
                << kgain::test::models_dir() << "/mobilenet_v1_0.25_128_quant.ts.pt\"\nnative_input_size = 128\n"
                << "[variants]\nrandom_seeds = [0, 1]\n[splits]\nfolds = 3\n[transferability]\nsource = "
                   "true\n[analysis]\nbootstrap = 200\n";
            RunOptions options;
            options.out_dir = (root / "run").string();
            run_study(load_config((root / "study.toml").string()), options);
          }) +
      "/run";
  return dir;
}
}  // namespace

TEST_CASE("report.html is self-contained and every chart has marks", "[report]") {
  const std::string html = slurp(run_dir() + "/report.html");
  REQUIRE(!html.empty());
  // Nothing to fetch: no scripts, stylesheets, images or links to other files.
  CHECK(count(html, "<script") == 0);
  CHECK(count(html, "<link") == 0);
  CHECK(count(html, "<img") == 0);
  CHECK(count(html, "src=") == 0);
  const std::regex url("https?://");
  for (std::sregex_iterator it(html.begin(), html.end(), url), end; it != end; ++it)
    CHECK(html.compare(it->position(), 26, "http://www.w3.org/2000/svg") ==
          0);  // the SVG namespace name, never fetched
  // Score, gain, score-vs-parameters and score-vs-MACs charts for the logistic probe, the
  // transferability and CKA charts, and the same four charts for each further metric.
  const std::size_t charts = count(html, "<svg class=\"kgain-chart\"");
  CHECK(charts == 4 + 2 + 2 * 4);
  CHECK(count(html, "Score vs multiply-accumulates up to the tap") == 2 * 3);  // title and label of each
  std::size_t start = 0;
  for (std::size_t c = 0; c < charts; ++c) {
    start = html.find("<svg class=\"kgain-chart\"", start);
    const std::size_t end = html.find("</svg>", start);
    CAPTURE(c);
    CHECK(count(html.substr(start, end - start), "class=\"mark") >= 14);  // a point per tap at least
    start = end;
  }
  for (const char* section : {"Dataset", "Configuration", "Software", "lung_aca", "LibTorch", "sweet spot", "leep = -"})
    CHECK(count(html, section) > 0);

  // kgain report redraws the same file from the run's files (in a copy: the run is shared).
  const fs::path copy = kgain::test::fresh_temp_dir("report-redraw") / "run";
  fs::copy(run_dir(), copy, fs::copy_options::recursive);
  fs::remove(copy / "report.html");
  write_report(copy.string());
  CHECK(slurp((copy / "report.html").string()) == html);
  fs::remove_all(copy.parent_path());
}

TEST_CASE("report.html renders in headless Chromium with every chart drawn", "[report][browser]") {
  const std::string chromium = kgain::test::chromium_path();
  if (chromium.empty()) {
    WARN("Chromium is not installed (apt-get install chromium): the browser check of the report is skipped");
    return;
  }
  // A copy of the report with a probe script appended (the report itself has none): after
  // layout, it counts charts whose marks have a non-empty on-screen box.
  const fs::path work = kgain::test::fresh_temp_dir("report-browser");  // the run itself is shared
  std::string html = slurp(run_dir() + "/report.html");
  html.insert(html.rfind("</body>"),
              "<script>addEventListener('load',()=>{let ok=0,all=0;for(const s of "
              "document.querySelectorAll('svg.kgain-chart')){"
              "if(s.closest('details'))continue;all++;const r=s.getBoundingClientRect();let drawn=0;"
              "for(const m of s.querySelectorAll('.mark')){const b=m.getBBox();if(b.width>0&&b.height>0)drawn++;}"
              "if(r.width>0&&r.height>0&&drawn>0)ok++;}"
              "const p=document.createElement('p');p.id='kgain-check';p.textContent='CHARTS '+ok+' OF "
              "'+all;document.body.appendChild(p);});"
              "</script>");
  std::ofstream(work / "probe.html") << html;
  const std::string flags = chromium +
                            " --headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking"
                            " --disable-component-update --disable-sync --user-data-dir=" +
                            (work / "chromium-profile").string();
  const std::string dom = (work / "dom.html").string();
  REQUIRE(std::system(("timeout 120 " + flags + " --virtual-time-budget=5000 --dump-dom file://" +
                       (work / "probe.html").string() + " > " + dom + " 2> " + (work / "chromium.log").string())
                          .c_str()) == 0);
  const std::string rendered = slurp(dom);
  std::smatch m;
  REQUIRE(std::regex_search(rendered, m, std::regex("CHARTS (\\d+) OF (\\d+)")));
  CHECK(m[1] == m[2]);
  CHECK(std::stoi(m[2]) == 6);  // the visible charts (the others sit in closed <details>)

  // A screenshot: the charts' blue and orange lines are really painted.
  const std::string png = (work / "report.png").string();
  REQUIRE(std::system(("timeout 120 " + flags + " --window-size=1280,2400 --screenshot=" + png + " file://" +
                       run_dir() + "/report.html 2>> " + (work / "chromium.log").string())
                          .c_str()) == 0);
  const cv::Mat shot = cv::imread(png, cv::IMREAD_COLOR);
  REQUIRE(!shot.empty());
  int blue = 0, orange = 0;
  for (int y = 0; y < shot.rows; ++y)
    for (int x = 0; x < shot.cols; ++x) {
      const auto p = shot.at<cv::Vec3b>(y, x);  // BGR
      blue += std::abs(p[0] - 180) < 30 && std::abs(p[1] - 119) < 30 && std::abs(p[2] - 31) < 30;
      orange += std::abs(p[0] - 14) < 30 && std::abs(p[1] - 127) < 30 && std::abs(p[2] - 255) < 30;
    }
  CHECK(blue > 500);
  CHECK(orange > 500);
}

TEST_CASE("A log axis spanning less than two decades labels 1, 2 and 5 of each decade", "[report]") {
  // MobileNetV2's MACs at 96 px run from 2 M to 55 M: decades alone would give one label.
  SvgChart narrow("MACs", "MACs (log scale)", "score");
  narrow.log_x(true);
  narrow.add({"pretrained", "#1f77b4", {2e6, 1e7, 5.5e7}, {0.7, 0.75, 0.76}, {}, {}, false});
  const std::string svg = narrow.render();
  for (const char* label : {">2M<", ">5M<", ">10M<", ">20M<", ">50M<"}) CHECK(svg.find(label) != std::string::npos);
  // Over many decades, only the decades.
  SvgChart wide("parameters", "parameters (log scale)", "score");
  wide.log_x(true);
  wide.add({"pretrained", "#1f77b4", {900, 2e6}, {0.7, 0.76}, {}, {}, false});
  const std::string w = wide.render();
  CHECK(w.find(">1k<") != std::string::npos);
  CHECK(w.find(">1M<") != std::string::npos);
  CHECK(w.find(">2k<") == std::string::npos);
}
