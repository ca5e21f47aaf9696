// SPDX-License-Identifier: MIT
/*
 * cxx_threads: a multi-threaded C++ workload for cxx_threads.sh (built by
 * that script with g++, run with and without hakmem preloaded). Four
 * std::threads each build std::map, std::unordered_map, std::vector,
 * std::string and shared_ptr graphs, throw and catch exceptions (their
 * objects are heap-allocated by the C++ runtime), and hand shared_ptrs to
 * the next thread through a mutex-protected queue, so objects die on a
 * thread other than the one that made them. Output is deterministic.
 */
#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace {

struct Node {
	std::string name;
	std::vector<std::shared_ptr<Node>> kids;
	explicit Node(std::string n) : name(std::move(n)) {}
};

struct Mailbox {
	std::mutex mu;
	std::condition_variable cv;
	std::deque<std::shared_ptr<Node>> q;
};

uint64_t fnv(const std::string &s, uint64_t h = 1469598103934665603ULL)
{
	for (unsigned char c : s)
		h = (h ^ c) * 1099511628211ULL;
	return h;
}

uint64_t walk(const std::shared_ptr<Node> &n, int depth)
{
	uint64_t h = fnv(n->name);
	if (depth < 3)
		for (const auto &k : n->kids)
			h ^= walk(k, depth + 1) + 0x9e3779b97f4a7c15ULL + (h << 6);
	return h;
}

struct Result {
	uint64_t map_hash = 0, umap_sum = 0, tree_hash = 0, received = 0;
	size_t exceptions = 0, vec_len = 0;
};

void work(int id, Mailbox &in, Mailbox &out, Result &r)
{
	uint32_t x = 12345u + 977u * (unsigned)id;
	auto rnd = [&x] { x = x * 1103515245u + 12345u; return (x >> 8) & 0xffffff; };
	std::map<std::string, std::vector<int>> m;
	std::unordered_map<uint32_t, std::string> um;
	std::vector<std::string> v;

	for (int round = 0; round < 150; round++) {
		for (int i = 0; i < 800; i++) {
			uint32_t k = rnd();
			std::string key = "t" + std::to_string(id) + "-" + std::to_string(k % 3000);
			m[key].push_back((int)(k % 1000));
			um[k % 5000] = std::string(k % 90, (char)('a' + k % 26));
			v.emplace_back(key + std::string(k % 50, 'z'));
		}
		/* shrink: erase every third map entry, halve the vector */
		int n = 0;
		for (auto it = m.begin(); it != m.end();)
			it = (n++ % 3 == 0) ? m.erase(it) : std::next(it);
		v.erase(v.begin(), v.begin() + (long)(v.size() / 2));
		try {
			if (rnd() % 3 == 0)
				throw std::runtime_error("round " + std::to_string(round) +
							 " of thread " + std::to_string(id));
			std::vector<int> small(5);
			(void)small.at(5 + rnd() % 2);	/* throws std::out_of_range */
		} catch (const std::exception &e) {
			r.exceptions++;
			r.map_hash ^= fnv(e.what()) * (unsigned)(round + 1);
		}
		/* a small shared_ptr graph for the next thread */
		auto root = std::make_shared<Node>("root" + std::to_string(id) + "." + std::to_string(round));
		for (int i = 0; i < 8; i++) {
			auto kid = std::make_shared<Node>(root->name + "/" + std::to_string(i));
			for (int j = 0; j < 4; j++)
				kid->kids.push_back(std::make_shared<Node>(kid->name + ":" + std::to_string(j)));
			root->kids.push_back(kid);
		}
		{
			std::lock_guard<std::mutex> g(out.mu);
			out.q.push_back(root);
		}
		out.cv.notify_one();
		/*
		 * Take what the previous thread sent, waiting until it has sent
		 * at least round + 1 graphs (it sends before it waits, so this
		 * never deadlocks).
		 */
		std::unique_lock<std::mutex> g(in.mu);
		in.cv.wait(g, [&in, &r, round] {
			return !in.q.empty() || r.received > (uint64_t)round;
		});
		while (!in.q.empty()) {
			std::shared_ptr<Node> got = std::move(in.q.front());
			in.q.pop_front();
			g.unlock();
			r.tree_hash += walk(got, 0);
			r.received++;
			g.lock();
		}
	}
	for (const auto &kv : m)
		r.map_hash = r.map_hash * 31 + fnv(kv.first) + kv.second.size();
	for (const auto &kv : um)
		r.umap_sum += kv.first * 7 + kv.second.size();
	std::sort(v.begin(), v.end());
	r.vec_len = v.size();
	r.map_hash ^= v.empty() ? 0 : fnv(v.front()) ^ fnv(v.back());
}

} // namespace

int main()
{
	const int nthreads = 4;
	std::vector<Mailbox> box(nthreads);
	std::vector<Result> res(nthreads);
	std::vector<std::thread> th;

	for (int i = 0; i < nthreads; i++)
		th.emplace_back(work, i, std::ref(box[i]), std::ref(box[(i + 1) % nthreads]),
				std::ref(res[i]));
	for (auto &t : th)
		t.join();
	/* graphs still queued (sent in the last rounds) are hashed here */
	uint64_t left = 0, nleft = 0;
	for (auto &b : box) {
		for (auto &n : b.q) {
			left += walk(n, 0);
			nleft++;
		}
		b.q.clear();
	}
	uint64_t total_received = 0, total_tree = 0;
	for (int i = 0; i < nthreads; i++) {
		std::printf("thread %d: map %016llx umap %llu exceptions %zu vector %zu\n", i,
			    (unsigned long long)res[i].map_hash,
			    (unsigned long long)res[i].umap_sum, res[i].exceptions, res[i].vec_len);
		total_received += res[i].received;
		total_tree += res[i].tree_hash;
	}
	/* which thread received which graph depends on timing; the sums do not */
	std::printf("graphs %llu trees %016llx\n",
		    (unsigned long long)(total_received + nleft),
		    (unsigned long long)(total_tree + left));
	return 0;
}
