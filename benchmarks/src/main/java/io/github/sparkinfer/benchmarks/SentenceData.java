package io.github.sparkinfer.benchmarks;

import java.util.SplittableRandom;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.api.java.UDF1;
import org.apache.spark.sql.functions;
import org.apache.spark.sql.types.DataTypes;

/**
 * The text benchmark's input: row {@code id} has an English-like body of {@value #MIN_WORDS} to
 * {@value #MAX_WORDS} words, a pure function of the id. Spark generates the rows through that
 * function and the raw ONNX Runtime variants build their strings from it, so both see the same
 * text without collecting it to the driver.
 *
 * <p>Lengths follow a log-normal distribution (median {@value #MEDIAN_WORDS} words), clipped to
 * [{@value #MIN_WORDS}, {@value #MAX_WORDS}]: many short rows such as titles and queries, some
 * paragraphs, and a long tail past the tokenizer's 128-token limit. Padding cost, and so what
 * length-sorted batching can win, depends on that spread; uniform lengths would hide it. Words
 * come mostly from a few hundred common ones, favouring the most common, plus some longer and rarer
 * words that WordPiece splits into several tokens, so tokens per word vary as in real text.
 */
final class SentenceData {
  static final int MIN_WORDS = 3;
  static final int MAX_WORDS = 200;
  static final int MEDIAN_WORDS = 14;
  // ln-space standard deviation: about 2% of rows reach 95 words, where truncation starts.
  private static final double LENGTH_SPREAD = 0.9;
  private static final long SEED = 0x7E47_5EED_0001L;
  // Percent of words drawn from RARE_WORDS.
  private static final int RARE_PERCENT = 7;

  private static final String[] COMMON_WORDS = {
    "the", "of", "and", "to", "a", "in", "is", "it", "you", "that", "he", "was", "for", "on",
    "are", "with", "as", "his", "they", "be", "at", "one", "have", "this", "from", "or", "had",
    "by", "not", "word", "but", "what", "some", "we", "can", "out", "other", "were", "all",
    "there", "when", "up", "use", "your", "how", "said", "an", "each", "she", "which", "do",
    "their", "time", "if", "will", "way", "about", "many", "then", "them", "write", "would",
    "like", "so", "these", "her", "long", "make", "thing", "see", "him", "two", "has", "look",
    "more", "day", "could", "go", "come", "did", "number", "sound", "no", "most", "people", "my",
    "over", "know", "water", "than", "call", "first", "who", "may", "down", "side", "been", "now",
    "find", "any", "new", "work", "part", "take", "get", "place", "made", "live", "where",
    "after", "back", "little", "only", "round", "man", "year", "came", "show", "every", "good",
    "me", "give", "our", "under", "name", "very", "through", "just", "form", "sentence", "great",
    "think", "say", "help", "low", "line", "differ", "turn", "cause", "much", "mean", "before",
    "move", "right", "boy", "old", "too", "same", "tell", "does", "set", "three", "want", "air",
    "well", "also", "play", "small", "end", "put", "home", "read", "hand", "port", "large",
    "spell", "add", "even", "land", "here", "must", "big", "high", "such", "follow", "act", "why",
    "ask", "men", "change", "went", "light", "kind", "off", "need", "house", "picture", "try",
    "us", "again", "animal", "point", "mother", "world", "near", "build", "self", "earth",
    "father", "head", "stand", "own", "page", "should", "country", "found", "answer", "school",
    "grow", "study", "still", "learn", "plant", "cover", "food", "sun", "four", "between",
    "state", "keep", "eye", "never", "last", "let", "thought", "city", "tree", "cross", "farm",
    "hard", "start", "might", "story", "saw", "far", "sea", "draw", "left", "late", "run",
    "while", "press", "close", "night", "real", "life", "few", "north", "open", "seem",
    "together", "next", "white", "children", "begin", "got", "walk", "example", "ease", "paper",
    "group", "always", "music", "those", "both", "mark", "often", "letter", "until", "mile",
    "river", "car", "feet", "care", "second", "book", "carry", "took", "science", "eat", "room",
    "friend", "began", "idea", "fish", "mountain", "stop", "once", "base", "hear", "horse", "cut",
    "sure", "watch", "color", "face", "wood", "main", "enough", "plain", "girl", "usual", "young",
    "ready", "above", "ever", "red", "list", "though", "feel", "talk", "bird", "soon", "body",
    "dog", "family", "direct", "pose", "leave", "song", "measure", "door", "product", "black",
    "short", "numeral", "class", "wind", "question", "happen", "complete", "ship", "area", "half",
    "rock", "order", "fire", "south", "problem", "piece", "told", "knew", "pass", "since", "top",
    "whole", "king", "space", "heard", "best", "hour", "better", "true", "during", "hundred",
    "five", "remember", "step", "early", "hold", "west", "ground", "interest", "reach", "fast",
    "verb", "sing", "listen", "six", "table", "travel", "less", "morning", "ten", "simple",
    "several", "vowel", "toward", "war", "lay", "against", "pattern", "slow", "center", "love",
    "person", "money", "serve", "appear", "road", "map", "rain", "rule", "govern", "pull", "cold",
    "notice", "voice", "unit", "power", "town", "fine", "certain", "fly", "fall", "lead", "cry",
    "dark", "machine", "note", "wait", "plan", "figure", "star", "box", "noun", "field", "rest",
    "correct", "able", "pound", "done", "beauty", "drive", "stood", "contain", "front", "teach",
    "week", "final", "gave", "green", "quick", "develop", "ocean", "warm", "free", "minute",
    "strong", "special", "mind", "behind", "clear", "tail", "produce", "fact", "street", "inch",
    "multiply", "nothing", "course", "stay", "wheel", "full", "force", "blue", "object",
    "decide", "surface", "deep", "moon", "island", "foot", "system", "busy", "test", "record",
    "boat", "common", "gold", "possible", "plane", "stead", "dry", "wonder", "laugh", "thousand",
    "ago", "ran", "check", "game", "shape", "equate", "miss", "brought", "heat", "snow", "tire",
    "bring", "yes", "distant", "fill", "east", "paint", "language", "among", "customer", "invoice",
    "price", "delivery", "service", "account", "data", "report", "team", "meeting", "review",
  };

  // Long, technical or foreign words: WordPiece splits most into several pieces.
  private static final String[] RARE_WORDS = {
    "interoperability", "photosynthesis", "decentralization", "microservices", "kubernetes",
    "hyperparameters", "electroencephalography", "thermodynamics", "biodegradable",
    "cryptocurrency", "misinterpretation", "unbelievably", "reimbursement", "pharmaceutical",
    "anticoagulant", "spectrophotometer", "idempotency", "serialization", "deduplication",
    "backpropagation", "tokenization", "quantization", "latency", "throughput", "orchestration",
    "containerized", "observability", "geolocation", "cardiovascular", "immunotherapy",
    "mitochondrial", "nanoparticles", "superconductivity", "paleontologist", "archaeological",
    "Reykjavik", "Kowalczyk", "Szczecin", "Oaxaca", "Tbilisi", "Nguyen", "Ljubljana",
    "Xochimilco", "Wojciechowski", "Bhattacharya", "Okonkwo", "Zhengzhou", "Mississauga",
    "overcommitted", "underestimated", "counterintuitive", "disproportionately",
    "incomprehensible", "indistinguishable", "multidisciplinary", "telecommunications",
    "refurbishment", "procrastination", "acknowledgement", "entrepreneurship",
    "GPU", "API", "SQL", "JSON", "HTTP", "OAuth", "PostgreSQL", "TensorFlow", "PyTorch",
    "v2.3.1", "2024-06-30", "42%", "$1,299", "#4471", "e-mail", "co-operate", "re-evaluate",
    "naïve", "café", "résumé", "jalapeño", "Zürich", "façade", "fiancée",
  };

  private SentenceData() {}

  /** Row {@code id}'s text: whole sentences, at least one word, never blank. */
  static String body(long id) {
    // One generator per row: any row is computed alone, in any order, on any executor.
    SplittableRandom random = new SplittableRandom(SEED ^ (id * 0x9E3779B97F4A7C15L));
    int words = wordCount(random);
    StringBuilder text = new StringBuilder(words * 7);
    int sentenceLeft = sentenceLength(random);
    boolean sentenceStart = true;
    for (int word = 0; word < words; word++) {
      if (word > 0) {
        text.append(' ');
      }
      String next = word(random);
      if (sentenceStart) {
        text.append(Character.toUpperCase(next.charAt(0))).append(next, 1, next.length());
      } else {
        text.append(next);
      }
      sentenceStart = false;
      sentenceLeft--;
      if (word == words - 1 || sentenceLeft == 0) {
        text.append(random.nextInt(10) == 0 ? '?' : '.');
        sentenceLeft = sentenceLength(random);
        sentenceStart = true;
      } else if (random.nextInt(12) == 0) {
        text.append(',');
      }
    }
    return text.toString();
  }

  /** Words in a body: the generator separates them with single spaces. */
  static int words(String body) {
    int words = 1;
    for (int i = 0; i < body.length(); i++) {
      if (body.charAt(i) == ' ') {
        words++;
      }
    }
    return words;
  }

  private static int wordCount(SplittableRandom random) {
    double words = Math.exp(Math.log(MEDIAN_WORDS) + LENGTH_SPREAD * random.nextGaussian());
    return (int) Math.max(MIN_WORDS, Math.min(MAX_WORDS, Math.round(words)));
  }

  private static int sentenceLength(SplittableRandom random) {
    return 4 + random.nextInt(22);
  }

  private static String word(SplittableRandom random) {
    if (random.nextInt(100) < RARE_PERCENT) {
      return RARE_WORDS[random.nextInt(RARE_WORDS.length)];
    }
    // Squaring a uniform draw favours the front of the list, where the most common words are.
    double skewed = random.nextDouble();
    return COMMON_WORDS[(int) (skewed * skewed * COMMON_WORDS.length)];
  }

  /**
   * {@code rows} rows of (id long, body string) in {@code partitions} partitions, ids 0 to rows -
   * 1.
   */
  static Dataset<Row> generate(SparkSession spark, long rows, int partitions) {
    UDF1<Long, String> generator = SentenceData::body;
    return spark
        .range(0, rows, 1, partitions)
        .select(
            functions.col("id"),
            functions.udf(generator, DataTypes.StringType).apply(functions.col("id")).as("body"));
  }
}
