// The Node openai SDK through the seedreplay proxy: a seeded request plain, then streamed.
// Reads OPENAI_BASE_URL / OPENAI_API_KEY like any Node app; prints one JSON line per call.
import OpenAI from "openai";

const client = new OpenAI({ maxRetries: 0 });
const request = {
  model: "gpt-4o-mini",
  messages: [{ role: "user", content: "Say something about caches." }],
  seed: 7,
  max_tokens: 30,
};

for (const stream of [false, true]) {
  const { data, response } = await client.chat.completions.create({ ...request, stream }).withResponse();
  let text = "";
  if (stream) {
    for await (const chunk of data) text += chunk.choices[0]?.delta?.content ?? "";
  } else {
    text = data.choices[0].message.content;
  }
  console.log(JSON.stringify({ stream, cache: response.headers.get("x-seedreplay-cache"), text }));
}
