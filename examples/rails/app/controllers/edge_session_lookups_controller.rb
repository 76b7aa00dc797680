# The lookup edge-session asks (docs/ATTACH.md, "Attach mode in four steps"): POST,
# Authorization: Bearer <token>, body {"session_id":"<the raw value of the session cookie>"}.
# ActionController::API: no CSRF check and no session of its own.
class EdgeSessionLookupsController < ActionController::API
  TOKEN = ENV.fetch("EDGE_LOOKUP_TOKEN")
  SESSIONS = Rails.application.config.session_options.fetch(:cache) # the cache the session store writes

  def create
    # constant time (it tells only whether the lengths differ, and the token is long and random)
    unless ActiveSupport::SecurityUtils.secure_compare(request.authorization.to_s, "Bearer #{TOKEN}")
      return render(json: { error: "unauthorized" }, status: :unauthorized)
    end
    body = request.raw_post.to_s
    ask = body.bytesize <= 8192 ? (JSON.parse(body) rescue nil) : nil
    raw = ask["session_id"] if ask.is_a?(Hash)
    return render(json: { error: "bad_request" }, status: :bad_request) unless raw.is_a?(String) && !raw.empty?
    # Rails' session IDs are 32 hex digits: anything else is no session of ours
    return not_found unless raw.match?(/\A\h{32}\z/)

    sid = Rack::Session::SessionId.new(raw)
    # the keys ActionDispatch::Session::CacheStore reads: the private ID, or the public one for older sessions
    session = SESSIONS.read("_session_id:#{sid.private_id}") || SESSIONS.read("_session_id:#{sid.public_id}")
    user = session["user"] if session.is_a?(Hash)
    unless user.is_a?(String) && !user.empty?
      # A cache store answers a read it could not make with nil, as it does a miss: check that
      # the store is there before saying "not signed in" (RedisCacheStore: SESSIONS.redis.with(&:ping)).
      raise "the session store is unreachable" unless File.directory?(SESSIONS.cache_path)
      return not_found
    end
    render json: { user: user, claims: session["claims"], created: session["created"] }.compact
  rescue StandardError => e # the store failed: not a 404, which would sign the user out
    logger.error("edge-session lookup: #{e.class}: #{e.message}")
    render json: { error: "store_unavailable" }, status: :service_unavailable
  end

  private

  def not_found
    render json: { error: "not_found" }, status: :not_found
  end
end
