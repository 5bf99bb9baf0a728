// llamacpp_greedy.mjs — load GGUF files in llama.cpp (the prebuilt library
// of the npm package node-llama-cpp) and print the greedy continuation of a
// fixed token-id prompt, one line per file:
//     OK <file> <id> <id> ...      or      ERR <file> <message>
// usage: node llamacpp_greedy.mjs NODE_MODULES_DIR N_PREDICT IDS FILE...
//   NODE_MODULES_DIR  folder holding node-llama-cpp and @node-llama-cpp/linux-x64
//   IDS               comma-separated prompt token ids (no BOS is added)
// Nothing is downloaded or built: build "never" uses the prebuilt binary.
// Run by tests/test_oracle_llamacpp.c (docs/gguf.md).
import path from "node:path";
import {pathToFileURL} from "node:url";

const [dir, nStr, idsStr, ...files] = process.argv.slice(2);
if (!dir || !nStr || !idsStr || files.length === 0) {
    console.error("usage: node llamacpp_greedy.mjs NODE_MODULES_DIR N_PREDICT IDS FILE...");
    process.exit(2);
}
const entry = path.join(dir, "node-llama-cpp", "dist", "index.js");
const {getLlama, LlamaLogLevel} = await import(pathToFileURL(entry).href);
const nPredict = Number(nStr);
const prompt = idsStr.split(",").map(Number);

const llama = await getLlama({
    gpu: false,
    build: "never",
    progressLogs: false,
    logLevel: LlamaLogLevel.error,
});
for (const file of files) {
    let model = null, context = null;
    try {
        model = await llama.loadModel({modelPath: file});
        context = await model.createContext({contextSize: 64, threads: 1});
        const seq = context.getSequence();
        const out = [];
        for await (const t of seq.evaluate(prompt, {temperature: 0})) {
            out.push(t);
            if (out.length >= nPredict) break;
        }
        console.log(`OK ${file} ${out.join(" ")}`);
    } catch (e) {
        console.log(`ERR ${file} ${String(e && e.message ? e.message : e).replace(/\s+/g, " ")}`);
    } finally {
        if (context) await context.dispose();
        if (model) await model.dispose();
    }
}
await llama.dispose();
