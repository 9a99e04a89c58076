#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include "csa/core/compress.h"
#include "csa/core/cpu_allocator.h"
#include "csa/core/error.h"
#include "csa/core/file.h"
#include "csa/core/hash.h"
#include "csa/core/json.h"
#include "csa/core/profile.h"
#include "csa/core/runtime.h"
#include "csa/core/utf8.h"
#include "support.h"

using namespace csa;

TEST_CASE("sha256 matches the FIPS 180-4 test vectors", "[unit]") {
  CHECK(sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  Sha256 h;  // streaming in odd-sized pieces gives the same digest
  std::string million(1000000, 'a');
  for (size_t i = 0; i < million.size(); i += 777) h.update(million.substr(i, 777));
  CHECK(h.hex_digest() == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST_CASE("UTF-8 validation gives the offset of the first bad byte", "[unit]") {
  CHECK_FALSE(find_invalid_utf8("plain ascii").has_value());
  CHECK_FALSE(find_invalid_utf8("caf\xC3\xA9 \xE6\x97\xA5 \xF0\x9F\x98\x80").has_value());
  CHECK(find_invalid_utf8("ab\xFF").value() == 2);
  CHECK(find_invalid_utf8("a\xC3").value() == 1);               // truncated sequence
  CHECK(find_invalid_utf8("x\xC0\xAF").value() == 1);           // overlong
  CHECK(find_invalid_utf8("\xED\xA0\x80").value() == 0);        // surrogate
  CHECK(find_invalid_utf8("ok\xF4\x90\x80\x80").value() == 2);  // > U+10FFFF
  CHECK(replace_invalid_utf8("a\xFF"
                             "b\xE6\x97") ==
        "a\xEF\xBF\xBD"
        "b\xEF\xBF\xBD");
}

TEST_CASE("atomic writes leave no partial file behind", "[unit]") {
  test::TempDir dir;
  const std::string out = dir.file("out.json");
  write_file_atomic(out, "{}\n");
  CHECK(read_file(out) == "{}\n");
  CHECK_THROWS_AS(write_file_atomic(dir.file("missing/sub/out.json"), "x"), IoError);
  CHECK_THROWS_AS(write_file_atomic(dir.path(), "x"), IoError);  // a directory
  size_t n = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
    (void)e;
    ++n;
  }
  CHECK(n == 1);  // only out.json: no temporaries left
  {
    AtomicFileWriter w(dir.file("never.json"));
    test::write_text(w.temp_path(), "partial");
  }  // destroyed without commit
  CHECK_FALSE(file_exists(dir.file("never.json")));
}

namespace {
// Reads `path_of(read_end)` while a thread writes `content` into a pipe: a stream with no size.
template <class Read>
std::string read_through_pipe(const std::string& content, Read read) {
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  std::thread writer([&] {
    for (size_t done = 0; done < content.size();) {
      const ssize_t n =
          write(fds[1], content.data() + done, std::min<size_t>(4096, content.size() - done));
      if (n <= 0) break;
      done += static_cast<size_t>(n);
    }
    close(fds[1]);
  });
  std::string got;
  try {
    got = read("/dev/fd/" + std::to_string(fds[0]));
  } catch (...) {
    writer.join();
    close(fds[0]);
    throw;
  }
  writer.join();
  close(fds[0]);
  return got;
}
}  // namespace

TEST_CASE("pipes and /dev/fd/N are read to their end, not by st_size", "[unit]") {
  std::string big(300000, 'x');  // more than a pipe's buffer
  for (size_t i = 0; i < big.size(); i += 997) big[i] = static_cast<char>('a' + i % 26);
  CHECK(read_through_pipe(big, [](const std::string& p) { return read_file(p); }) == big);
  CHECK(read_through_pipe("", [](const std::string& p) { return read_file(p); }).empty());
  CHECK(read_through_pipe("PK\x03\x04 and more", [](const std::string& p) {
          return std::string(MappedFile::open(p)->view());
        }) == "PK\x03\x04 and more");
  CHECK_THROWS_WITH(
      read_through_pipe("  \n", [](const std::string& p) { return read_json_file(p).dump(); }),
      Catch::Contains("empty, expected JSON") && Catch::Contains("did the command"));
  CHECK(read_through_pipe("{\"a\": 1}", [](const std::string& p) {
          return read_json_file(p).dump();
        }) == "{\"a\":1}");
  CHECK(input_label("-") == "<stdin>");
  CHECK(input_label("a.txt") == "a.txt");
  CHECK(is_stdin_path("-"));
  test::TempDir dir;
  REQUIRE(mkfifo(dir.file("fifo").c_str(), 0600) == 0);
  CHECK_FALSE(is_regular_file(dir.file("fifo")));
  test::write_text(dir.file("f.txt"), "abc");
  CHECK(is_regular_file(dir.file("f.txt")));
  CHECK_FALSE(is_regular_file(dir.path()));
  CHECK_THROWS_WITH(read_file(dir.path()), Catch::Contains("is a directory"));
}

TEST_CASE("JSON inputs may be gzipped, .gz outputs are, bad streams name the file", "[unit]") {
  test::TempDir dir;
  const Json j = parse_json(R"({"a": [1, 2, 3], "s": "x\u00e9"})", "t");
  write_json_file(dir.file("p.json.gz"), j);
  write_json_file(dir.file("p.json"), j);
  const std::string gz = read_file(dir.file("p.json.gz")), plain = read_file(dir.file("p.json"));
  CHECK(is_gzip(gz));
  CHECK_FALSE(is_gzip(plain));
  CHECK(plain == dump_json(j));
  CHECK(gzip_bytes(plain) == gz);  // no name, no time stamp: the same bytes every time
  CHECK(inflate_bytes(gz, DeflateWrapper::kGzip, 1 << 20, "t") == plain);
  CHECK(inflate_if_gzip(gz, 1 << 20, "t") == plain);
  CHECK(inflate_if_gzip(plain, 1, "t") == plain);  // not gzipped: as it is, whatever the bound
  // read by content, whatever the name; through a pipe too
  CHECK(read_json_file(dir.file("p.json.gz")) == j);
  test::write_text(dir.file("plain.json.gz"), plain);
  CHECK(read_json_file(dir.file("plain.json.gz")) == j);
  test::write_text(dir.file("gz.json"), gz);
  CHECK(read_json_file(dir.file("gz.json")) == j);
  CHECK(read_through_pipe(gz, [](const std::string& p) { return read_json_file(p).dump(); }) ==
        j.dump());
  // members one after another (gzip allows it) inflate to their concatenation
  CHECK(inflate_bytes(gzip_bytes("ab") + gzip_bytes("cd"), DeflateWrapper::kGzip, 100, "t") ==
        "abcd");
  // truncated, corrupt, too large: FormatError naming the file
  test::write_text(dir.file("cut.json.gz"), gz.substr(0, gz.size() / 2));
  CHECK_THROWS_WITH(read_json_file(dir.file("cut.json.gz")),
                    Catch::Contains("cut.json.gz") && Catch::Contains("truncated"));
  std::string bad = gz;
  bad[bad.size() - 6] = static_cast<char>(bad[bad.size() - 6] ^ 0x5a);  // the CRC-32
  test::write_text(dir.file("bad.json.gz"), bad);
  CHECK_THROWS_WITH(read_json_file(dir.file("bad.json.gz")),
                    Catch::Contains("bad.json.gz") && Catch::Contains("corrupt gzip data"));
  test::write_text(dir.file("empty.json.gz"), gzip_bytes(" \n"));
  CHECK_THROWS_WITH(read_json_file(dir.file("empty.json.gz")),
                    Catch::Contains("empty, expected JSON"));
  const std::string zeros = gzip_bytes(std::string(1 << 20, '\0'));  // 1 MB from ~1 KB
  CHECK(inflate_bytes(zeros, DeflateWrapper::kGzip, 1 << 20, "t").size() == 1 << 20);
  CHECK_THROWS_WITH(inflate_bytes(zeros, DeflateWrapper::kGzip, 1000, "bomb.gz"),
                    Catch::Contains("bomb.gz") && Catch::Contains("inflates past 1000 bytes"));
  // raw DEFLATE (ZIP entries): a gzip stream less its 10-byte header and 8-byte trailer
  const std::string raw = gz.substr(10, gz.size() - 18);
  CHECK(inflate_bytes(raw, DeflateWrapper::kRaw, plain.size(), "t", plain.size()) == plain);
  CHECK_THROWS_WITH(inflate_bytes(raw + "x", DeflateWrapper::kRaw, 1 << 20, "entry 'e'"),
                    Catch::Contains("entry 'e'") && Catch::Contains("bytes after the end"));
  CHECK_THROWS_WITH(inflate_bytes(raw, DeflateWrapper::kRaw, plain.size() - 1, "t"),
                    Catch::Contains("inflates past"));
  // a failed .gz write leaves nothing behind
  CHECK_THROWS_AS(write_json_file(dir.file("missing/p.json.gz"), j), IoError);
}

TEST_CASE("JSON reader errors name the file and field", "[unit]") {
  CHECK_THROWS_WITH(parse_json("{\"a\": ", "cfg.json"),
                    Catch::Contains("cfg.json") && Catch::Contains("not valid JSON"));
  Json j = parse_json(R"({"n": 3, "s": "x", "f": 1.5, "o": {"k": true}})", "cfg.json");
  JsonReader r(j, "cfg.json");
  CHECK(r.get_int("n") == 3);
  CHECK(r.get_int("missing", 7) == 7);
  CHECK(r.child("o").get_bool("k"));
  CHECK_THROWS_WITH(r.get_int("s"), Catch::Contains("cfg.json") && Catch::Contains("'s'"));
  CHECK_THROWS_WITH(r.get_int("f"), Catch::Contains("must be an integer"));
  CHECK_THROWS_WITH(r.child("o").get_int("zz"), Catch::Contains("'o.zz' is missing"));
  CHECK_THROWS_AS(read_json_file("/nonexistent/x.json"), IoError);
}

TEST_CASE("profile scopes add up per phase and per section only while enabled", "[unit]") {
  auto work = [](int n) {
    for (int i = 0; i < n; ++i) {
      CSA_PROFILE_SCOPE("test/inner");
    }
    CSA_PROFILE_SCOPE("test/outer");
  };
  profile_reset();
  work(3);  // disabled: nothing recorded
  CHECK_FALSE(profile_json()["phases"].contains("test/inner"));
  profile_enable(true);
  {
    ProfileSection a("first");
    work(2);
  }
  {
    ProfileSection b("second");
    work(5);
  }
  profile_enable(false);
  work(7);
  Json j = profile_json();
  CHECK(j["phases"]["test/inner"]["calls"] == 7);
  CHECK(j["phases"]["test/outer"]["calls"] == 2);
  CHECK(j["phases"]["test/inner"]["seconds"].get<double>() >= 0);
  REQUIRE(j["sections"].size() == 2);
  CHECK(j["sections"][0]["label"] == "first");
  CHECK(j["sections"][0]["phases"]["test/inner"]["calls"] == 2);
  CHECK(j["sections"][1]["phases"]["test/inner"]["calls"] == 5);
  CHECK(j["sections"][1]["wall_seconds"].get<double>() >= 0);
  CHECK_FALSE(j["phases"]["test/inner"].contains("thread_seconds"));  // all on this thread
  profile_reset();
  CHECK(profile_json()["sections"].empty());
}

// The start-up figure of --profile (process.start_up_seconds): this process's age, read from
// /proc, grows with wall time and is never negative here (-1 means unreadable).
TEST_CASE("process_age_seconds reads this process's age from /proc", "[unit]") {
  const double a = csa::process_age_seconds();
  REQUIRE(a >= 0);
  CHECK(a < 24 * 3600);
  std::this_thread::sleep_for(std::chrono::milliseconds(120));
  const double b = csa::process_age_seconds();
  CHECK(b >= a + 0.05);  // /proc/uptime and starttime move in 10 ms steps
  CHECK(b < a + 5);
}

TEST_CASE("the reusing CPU allocator hands a freed large block out again", "[unit]") {
  install_reusing_cpu_allocator();
  void* first = nullptr;
  {
    at::Tensor a = at::empty({3 << 20}, at::kFloat);  // 12 MiB
    first = a.data_ptr();
    a.fill_(1.0f);
  }
  CHECK(reusing_cpu_allocator_cached_bytes() >= (size_t(12) << 20));
  at::Tensor b = at::empty({3 << 20}, at::kFloat);  // same size class: the same block
  CHECK(b.data_ptr() == first);
  at::Tensor small = at::ones({10});  // small blocks go straight to malloc
  CHECK(small.sum().item<float>() == 10.0f);
  install_reusing_cpu_allocator(0);  // a cap of 0 frees what is held
  CHECK(reusing_cpu_allocator_cached_bytes() == 0);
  install_reusing_cpu_allocator();
}
